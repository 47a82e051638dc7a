package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// taintKey identifies a NoExecute taint on a node.
type taintKey struct {
	node, key, value string
}

// trackTaints records when this controller first saw each NoExecute taint.
func (c *Controller) trackTaints(now time.Time, taints map[string][]v1.Taint) {
	live := map[taintKey]bool{}
	for node, ts := range taints {
		for _, t := range ts {
			if t.Effect != v1.TaintEffectNoExecute {
				continue
			}
			k := taintKey{node, t.Key, t.Value}
			live[k] = true
			if _, ok := c.taintSeen[k]; !ok {
				c.taintSeen[k] = now
			}
		}
	}
	for k := range c.taintSeen {
		if !live[k] {
			delete(c.taintSeen, k)
		}
	}
}

// taintSince is when a NoExecute taint counts from: its timeAdded, but never
// before this controller saw it. timeAdded crosses the wire in whole seconds
// and may come from another server's clock; the local sighting bounds both.
func (c *Controller) taintSince(node string, t v1.Taint) time.Time {
	seen := c.taintSeen[taintKey{node, t.Key, t.Value}]
	if t.TimeAdded != nil && t.TimeAdded.After(seen) {
		return t.TimeAdded.Time
	}
	return seen
}

// scheduleEvictions queues every pod whose time on a NoExecute-tainted node is up.
func (c *Controller) scheduleEvictions(now time.Time, taints map[string][]v1.Taint) {
	for node, ts := range taints {
		var noExec []v1.Taint
		for _, t := range ts {
			if t.Effect == v1.TaintEffectNoExecute {
				noExec = append(noExec, t)
			}
		}
		if len(noExec) == 0 {
			continue
		}
		for _, p := range c.podsOn(node) {
			if p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
				continue // already going, or nothing left running to move
			}
			at, ok := evictAt(p.Spec.Tolerations, noExec, func(t v1.Taint) time.Time { return c.taintSince(node, t) })
			if ok && !now.Before(at) {
				key, _ := cache.MetaNamespaceKeyFunc(p)
				c.evictions.Add(key)
			}
		}
	}
}

func (c *Controller) podsOn(node string) []*v1.Pod {
	var out []*v1.Pod
	if c.indexed {
		objs, err := c.podIndexer.ByIndex(podNodeIndex, node)
		if err == nil {
			for _, o := range objs {
				if p, ok := o.(*v1.Pod); ok {
					out = append(out, p)
				}
			}
			return out
		}
	}
	all, _ := c.pods.List(labels.Everything())
	for _, p := range all {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

// evictAt returns when a pod with tolerations must leave a node carrying the
// NoExecute taints; ok is false if it tolerates them all forever. since
// gives the moment each taint counts from. An untolerated taint means now.
func evictAt(tolerations []v1.Toleration, taints []v1.Taint, since func(v1.Taint) time.Time) (at time.Time, ok bool) {
	for _, t := range taints {
		matched := false
		var limit *time.Duration
		for _, tol := range tolerations {
			if !tolerates(tol, t) {
				continue
			}
			matched = true
			if tol.TolerationSeconds == nil {
				continue
			}
			d := time.Duration(max(*tol.TolerationSeconds, 0)) * time.Second
			if limit == nil || d < *limit {
				limit = &d
			}
		}
		var when time.Time
		switch {
		case !matched:
			when = since(t)
		case limit == nil:
			continue // tolerated forever
		default:
			when = since(t).Add(*limit)
		}
		if !ok || when.Before(at) {
			at, ok = when, true
		}
	}
	return at, ok
}

// tolerates follows v1.Toleration.ToleratesTaint (which wants a klog logger).
func tolerates(tol v1.Toleration, t v1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "", v1.TolerationOpEqual:
		return tol.Value == t.Value
	case v1.TolerationOpExists:
		return true
	case v1.TolerationOpLt, v1.TolerationOpGt:
		want, err1 := strconv.ParseInt(tol.Value, 10, 64)
		have, err2 := strconv.ParseInt(t.Value, 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if tol.Operator == v1.TolerationOpLt {
			return have < want
		}
		return have > want
	}
	return false
}

// markPodsNotReady sets Ready=False on the pods of an unreachable node, as
// Kubernetes does, so Services stop sending them traffic before eviction;
// the agent that could contradict it is gone, and resets it if it returns.
func (c *Controller) markPodsNotReady(ctx context.Context, now time.Time, node string) {
	for _, p := range c.podsOn(node) {
		i := slices.IndexFunc(p.Status.Conditions, func(c v1.PodCondition) bool { return c.Type == v1.PodReady })
		if p.DeletionTimestamp != nil || i < 0 || p.Status.Conditions[i].Status != v1.ConditionTrue {
			continue
		}
		upd := p.DeepCopy()
		upd.Status.Conditions[i].Status = v1.ConditionFalse
		upd.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		_, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		switch {
		case err == nil, apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			c.logger.Debug("pod changed, marking it not ready next pass", "pod", p.Namespace+"/"+p.Name)
		default:
			c.logger.Warn("cannot mark pod not ready", "pod", p.Namespace+"/"+p.Name, "node", node, "err", err)
		}
	}
}

// evictionLog names the pod in the log line of a failed eviction.
var evictionLog = []controllerutil.WorkerOption{
	controllerutil.KeyAttr("pod"), controllerutil.FailureMessage("eviction failed, retrying"),
}

// evict deletes a pod gracefully: its agent, if alive, stops it properly.
func (c *Controller) evict(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	p, err := c.pods.Pods(ns).Get(name)
	if err != nil || p.DeletionTimestamp != nil {
		return nil
	}
	uid := p.UID
	err = c.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("evict pod %s from node %q: %w", key, p.Spec.NodeName, err)
	}
	c.recorder.Eventf(p, v1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", key)
	c.logger.Info("evicted pod from tainted node", "pod", key, "node", p.Spec.NodeName)
	return nil
}
