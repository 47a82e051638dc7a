package scheduler

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeInfo is one node as the filters and scores see it: the node's own
// properties, pre-digested when the node changes, and the sum of the pods
// bound or assumed to it.
type nodeInfo struct {
	name string
	// node is nil for a ghost: the node is gone but pods still name it, and
	// their usage must survive until they go too (or the node comes back).
	node *corev1.Node
	idx  int // position in cache.list; -1 while not schedulable-listed

	ready         bool
	unschedulable bool
	labels        map[string]string
	hardTaints    []corev1.Taint // NoSchedule and NoExecute
	softTaints    []corev1.Taint // PreferNoSchedule
	alloc         resources
	allowedPods   int64

	requested resources
	nonzero   resources // scoring view of requested: cpu and memory only
	pods      int64
	ports     []hostPort
	owners    map[types.UID]int32
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, idx: -1}
}

// setNode digests a node object. It reports whether anything the filters or
// scores read has changed, so heartbeat-only updates do not wake up every
// unschedulable pod.
func (n *nodeInfo) setNode(node *corev1.Node) bool {
	ready := nodeReady(node)
	alloc, allowed := nodeAllocatable(node)
	var hard, soft []corev1.Taint
	for _, t := range node.Spec.Taints {
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute:
			hard = append(hard, t)
		case corev1.TaintEffectPreferNoSchedule:
			soft = append(soft, t)
		}
	}
	changed := n.node == nil ||
		ready != n.ready ||
		node.Spec.Unschedulable != n.unschedulable ||
		allowed != n.allowedPods ||
		!alloc.equal(&n.alloc) ||
		!maps.Equal(node.Labels, n.labels) ||
		!slices.EqualFunc(hard, n.hardTaints, sameTaint) ||
		!slices.EqualFunc(soft, n.softTaints, sameTaint)
	n.node = node
	n.ready = ready
	n.unschedulable = node.Spec.Unschedulable
	n.labels = node.Labels
	n.hardTaints, n.softTaints = hard, soft
	n.alloc, n.allowedPods = alloc, allowed
	return changed
}

// sameTaint ignores TimeAdded, which the node lifecycle controller rewrites.
func sameTaint(a, b corev1.Taint) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
}

func nodeReady(node *corev1.Node) bool {
	for i := range node.Status.Conditions {
		if c := &node.Status.Conditions[i]; c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (n *nodeInfo) addUsage(u *podUsage) {
	n.requested.add(&u.req)
	n.nonzero.add(&u.nonzero)
	n.pods++
	n.ports = append(n.ports, u.ports...)
	if u.owner != "" {
		if n.owners == nil {
			n.owners = make(map[types.UID]int32)
		}
		n.owners[u.owner]++
	}
}

func (n *nodeInfo) removeUsage(u *podUsage) {
	n.requested.sub(&u.req)
	n.nonzero.sub(&u.nonzero)
	n.pods--
	for _, p := range u.ports {
		if i := slices.Index(n.ports, p); i >= 0 {
			n.ports = slices.Delete(n.ports, i, i+1)
		}
	}
	if u.owner != "" {
		if c := n.owners[u.owner]; c > 1 {
			n.owners[u.owner] = c - 1
		} else {
			delete(n.owners, u.owner)
		}
	}
}
