package coe

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"wharf.dev/wharf/internal/wire"
)

// drainPoll is how often a drain looks for the pods it evicted.
const drainPoll = 100 * time.Millisecond

// removeHost takes a host out of its cluster: cordon and drain its node
// (best effort, bounded by DrainTimeout: a dead node's pods never leave by
// themselves), delete the host, then its Node object. The host goes
// before the Node so that its agent cannot register the node again.
// kube is nil when the cluster's API is unknown.
func (c *Controller) removeHost(ctx context.Context, kube kubernetes.Interface, e *env, name string) error {
	log := c.log.With("cluster", e.ref.Namespace+"/"+e.ref.Name, "host", name)
	if kube != nil {
		if err := c.drain(ctx, kube, name); err != nil {
			if ctx.Err() != nil {
				return err
			}
			log.Warn("drain incomplete, removing the host anyway", "err", err)
		}
	}
	if err := e.prov.DeleteHost(ctx, e.ref, name); err != nil {
		return fmt.Errorf("delete host %q: %w", name, err)
	}
	if err := forgetNode(ctx, kube, name); err != nil {
		return err
	}
	log.Info("host removed")
	return nil
}

// forgetNode deletes the Node of a deleted host and revokes its agent's
// token. kube is nil when the cluster's API is unknown.
func forgetNode(ctx context.Context, kube kubernetes.Interface, name string) error {
	if kube == nil {
		return nil
	}
	if err := kube.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %q: %w", name, err)
	}
	return wire.RevokeNodeToken(ctx, kube, name)
}

// drain cordons a node and evicts its pods through the eviction
// subresource (which honours disruption budgets where the API has them),
// then waits for them to go: their controllers recreate them elsewhere.
// DaemonSet and mirror pods stay, as with kubectl drain.
func (c *Controller) drain(ctx context.Context, kube kubernetes.Interface, node string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil || n.Spec.Unschedulable {
			return err
		}
		n.Spec.Unschedulable = true
		_, err = kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil // never registered: nothing runs there
	}
	if err != nil {
		return fmt.Errorf("cordon node %q: %w", node, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DrainTimeout)
	defer cancel()
	for {
		left, err := evictPods(ctx, kube, node)
		if err == nil && left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d pods still on it", left)
			}
			return fmt.Errorf("drain node %q: %w (%w)", node, err, ctx.Err())
		case <-c.clock.After(drainPoll):
		}
	}
}

// evictPods asks each of the node's pods to leave and counts those left.
func evictPods(ctx context.Context, kube kubernetes.Interface, node string) (int, error) {
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return 0, fmt.Errorf("list pods of node %q: %w", node, err)
	}
	left := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if !evictable(p) {
			continue
		}
		left++
		if p.DeletionTimestamp != nil {
			continue
		}
		err := kube.CoreV1().Pods(p.Namespace).EvictV1(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID))},
		})
		switch {
		case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err):
		case apierrors.IsTooManyRequests(err):
			// A disruption budget says not now; the next round asks again.
		default:
			return left, fmt.Errorf("evict pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return left, nil
}

// evictable: not a mirror pod, not a DaemonSet's (it would come back on
// the same node).
func evictable(p *corev1.Pod) bool {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	return !slices.ContainsFunc(p.OwnerReferences, func(r metav1.OwnerReference) bool {
		return r.Controller != nil && *r.Controller && r.Kind == "DaemonSet"
	})
}
