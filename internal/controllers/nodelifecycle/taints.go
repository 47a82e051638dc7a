package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// taintID is a taint this controller owns, by key and effect.
type taintID struct {
	Key    string
	Effect v1.TaintEffect
}

var (
	unreachableTaints = []taintID{{v1.TaintNodeUnreachable, v1.TaintEffectNoSchedule}, {v1.TaintNodeUnreachable, v1.TaintEffectNoExecute}}
	notReadyTaints    = []taintID{{v1.TaintNodeNotReady, v1.TaintEffectNoSchedule}, {v1.TaintNodeNotReady, v1.TaintEffectNoExecute}}
)

func owned(t v1.Taint) bool {
	return (t.Key == v1.TaintNodeUnreachable || t.Key == v1.TaintNodeNotReady) &&
		(t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute)
}

func ownedTaints(taints []v1.Taint) []taintID {
	var out []taintID
	for _, t := range taints {
		if owned(t) {
			out = append(out, taintID{t.Key, t.Effect})
		}
	}
	return out
}

// desiredTaints is the set of owned taints a node in state st should carry.
// A suppressed round only removes taints from nodes proven ready, and full
// disruption withholds every NoExecute taint.
func desiredTaints(st nodeState, current []taintID, suppress, full bool) []taintID {
	var want []taintID
	switch {
	case st == stateReady:
	case suppress || st == stateUnknown:
		want = current
	case st == stateNotReady:
		want = notReadyTaints
	case st == stateUnreachable:
		want = unreachableTaints
	}
	if full {
		want = slices.DeleteFunc(slices.Clone(want), func(t taintID) bool { return t.Effect == v1.TaintEffectNoExecute })
	}
	return want
}

// applyTaints returns taints with the owned ones replaced by want: kept ones
// keep their timeAdded, new ones get now. changed is false if nothing differs.
func applyTaints(taints []v1.Taint, want []taintID, now time.Time) (out []v1.Taint, changed bool) {
	for _, t := range taints {
		if owned(t) && !slices.Contains(want, taintID{t.Key, t.Effect}) {
			changed = true
			continue
		}
		out = append(out, t)
	}
	for _, w := range want {
		if slices.ContainsFunc(out, func(t v1.Taint) bool { return t.Key == w.Key && t.Effect == w.Effect }) {
			continue
		}
		added := metav1.NewTime(now)
		out = append(out, v1.Taint{Key: w.Key, Effect: w.Effect, TimeAdded: &added})
		changed = true
	}
	return out, changed
}

// unknownConditions sets every condition the agent reports to Unknown (and
// adds Ready if missing). NetworkUnavailable belongs to the network plugin,
// not the agent, so it is left alone as Kubernetes does. Heartbeat times
// stay, so our own write is never mistaken for a sign of life.
func unknownConditions(conds []v1.NodeCondition, now metav1.Time) ([]v1.NodeCondition, bool) {
	out := slices.Clone(conds)
	changed, haveReady := false, false
	for i := range out {
		c := &out[i]
		haveReady = haveReady || c.Type == v1.NodeReady
		if c.Type == v1.NodeNetworkUnavailable || c.Status == v1.ConditionUnknown {
			continue
		}
		c.Status, c.Reason, c.Message, c.LastTransitionTime = v1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", now
		changed = true
	}
	if !haveReady {
		out = append(out, v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionUnknown, Reason: "NodeStatusUnknown",
			Message: "Kubelet stopped posting node status.", LastTransitionTime: now})
		changed = true
	}
	return out, changed
}

// reconcile brings one node's status and taints in line with st and returns
// the taints it now carries. Writes start from the cached node and are not
// retried on conflict: a conflict means the node changed under us, and the
// next pass, a monitor period away, judges it again on fresh data.
func (c *Controller) reconcile(ctx context.Context, now time.Time, node *v1.Node, st nodeState, suppress, full bool) []v1.Taint {
	if st == stateUnreachable && !suppress {
		n, err := c.markUnknown(ctx, now, node)
		switch {
		case apierrors.IsConflict(err):
			c.logWriteError("cannot mark node unknown", node.Name, err)
			return node.Spec.Taints
		case err != nil:
			// Taints matter more than conditions: still try them.
			c.logWriteError("cannot mark node unknown", node.Name, err)
		default:
			node = n
		}
		c.markPodsNotReady(ctx, now, node.Name)
	}
	c.recordReadiness(node, st, suppress)
	want := desiredTaints(st, ownedTaints(node.Spec.Taints), suppress, full)
	taints, changed := applyTaints(node.Spec.Taints, want, now)
	if !changed {
		return node.Spec.Taints
	}
	upd := node.DeepCopy()
	upd.Spec.Taints = taints
	out, err := c.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		c.logWriteError("cannot update node taints", node.Name, err)
		return node.Spec.Taints
	}
	c.logger.Info("node taints updated", "node", node.Name, "taints", ownedTaints(out.Spec.Taints))
	return out.Spec.Taints
}

func (c *Controller) markUnknown(ctx context.Context, now time.Time, node *v1.Node) (*v1.Node, error) {
	conds, changed := unknownConditions(node.Status.Conditions, metav1.NewTime(now))
	if !changed {
		return node, nil
	}
	upd := node.DeepCopy()
	upd.Status.Conditions = conds
	out, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of node %q: %w", node.Name, err)
	}
	c.logger.Warn("node stopped renewing its lease: marked unknown", "node", node.Name, "grace", c.gracePeriod)
	return out, nil
}

func (c *Controller) logWriteError(msg, node string, err error) {
	if apierrors.IsConflict(err) {
		c.logger.Debug(msg+", retrying next pass", "node", node, "err", err)
		return
	}
	c.logger.Warn(msg, "node", node, "err", err)
}

// recordReadiness emits NodeReady/NodeNotReady events on transitions.
func (c *Controller) recordReadiness(node *v1.Node, st nodeState, suppress bool) {
	h := c.health[node.Name]
	if h == nil {
		return
	}
	status := v1.ConditionUnknown
	switch {
	case st == stateUnreachable && suppress:
		return // not judged this round
	case st == stateReady:
		status = v1.ConditionTrue
	case st == stateNotReady:
		status = v1.ConditionFalse
	}
	prev := h.ready
	h.ready = status
	switch {
	case prev == v1.ConditionTrue && status != v1.ConditionTrue:
		c.recorder.Eventf(node, v1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	case prev != "" && prev != v1.ConditionTrue && status == v1.ConditionTrue:
		c.recorder.Eventf(node, v1.EventTypeNormal, "NodeReady", "Node %s status is now: NodeReady", node.Name)
	}
}
