package coe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"wharf.dev/wharf/internal/wire"
)

// drainPoll is how often a drain looks for the pods it evicted.
const drainPoll = 100 * time.Millisecond

// removeHost takes a host out of its cluster: cordon and drain its node
// (best effort, bounded by DrainTimeout: a dead node's pods never leave by
// themselves), delete the host, then its Node object. A drain that ran out
// of time because PodDisruptionBudgets refused evictions keeps the host
// and fails its removal instead: the budgets are honoured. The host goes
// before the Node so that its agent cannot register the node again.
// kube is nil when the cluster's API is unknown.
func (c *Controller) removeHost(ctx context.Context, kube kubernetes.Interface, e *env, name string) error {
	log := c.log.With("cluster", e.ref.Namespace+"/"+e.ref.Name, "host", name)
	if kube != nil {
		if err := c.drain(ctx, kube, name); err != nil {
			if ctx.Err() != nil {
				return err
			}
			var blocked *drainBlocked
			if errors.As(err, &blocked) {
				// Honour the budgets: the host stays, cordoned, and the
				// update fails with the reason in the host's fault line.
				log.Warn("drain blocked by disruption budgets, host kept", "err", err)
				if err := recordDrainBlocked(ctx, kube, name, blocked); err != nil {
					log.Warn("record the blocked drain", "err", err)
				}
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
		left, blocked, err := evictPods(ctx, kube, node)
		if err == nil && left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil && len(blocked) > 0 {
				err = &drainBlocked{node: node, pods: blocked}
			}
			if err == nil {
				err = fmt.Errorf("%d pods still on it", left)
			}
			return fmt.Errorf("drain node %q: %w (%w)", node, err, ctx.Err())
		case <-c.clock.After(drainPoll):
		}
	}
}

// drainBlocked: a drain ran out of time with evictions still refused by
// disruption budgets (429).
type drainBlocked struct {
	node string
	pods map[string]string // namespace/name → the budget's answer
}

func (b *drainBlocked) Error() string {
	var parts []string
	for _, pod := range slices.Sorted(maps.Keys(b.pods)) {
		parts = append(parts, "pod "+pod+": "+b.pods[pod])
	}
	return "evictions refused by PodDisruptionBudgets: " + strings.Join(parts, "; ")
}

// recordDrainBlocked tells the cluster's users, with a Warning event on
// the node, why it is still there (as kubectl drain's output would).
func recordDrainBlocked(ctx context.Context, kube kubernetes.Interface, node string, b *drainBlocked) error {
	now := metav1.Now()
	_, err := kube.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", node, now.UnixNano()), Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node), APIVersion: "v1"},
		Reason:         "DrainBlocked",
		Message:        "Host not removed: " + b.Error(),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "wharf-cluster-service"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
}

// evictPods asks each of the node's pods to leave and counts those left;
// blocked holds the evictions a disruption budget refused, with its reason.
func evictPods(ctx context.Context, kube kubernetes.Interface, node string) (left int, blocked map[string]string, err error) {
	pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list pods of node %q: %w", node, err)
	}
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
			if blocked == nil {
				blocked = map[string]string{}
			}
			blocked[p.Namespace+"/"+p.Name] = budgetAnswer(err)
		default:
			return left, blocked, fmt.Errorf("evict pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return left, blocked, nil
}

// budgetAnswer is a 429's reason: the budget's own cause if it gave one.
func budgetAnswer(err error) string {
	if se, ok := err.(apierrors.APIStatus); ok && se.Status().Details != nil {
		for _, c := range se.Status().Details.Causes {
			if c.Type == policyv1.DisruptionBudgetCause {
				return c.Message
			}
		}
	}
	return err.Error()
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
