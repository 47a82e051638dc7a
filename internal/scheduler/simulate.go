package scheduler

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Simulator answers a host autoscaler's what-if questions (would this pod
// fit there, where would these pods go if that node went) with the
// scheduler's own filters, on nodes and pods the caller gives it. It is
// not safe for concurrent use; Clone makes an independent copy to try a
// change on.
type Simulator struct {
	nodes []*nodeInfo // in the order they were added
}

// NewSimulator returns an empty simulator.
func NewSimulator() *Simulator { return &Simulator{} }

// AddNode adds a node, or replaces the one of the same name (keeping its pods).
func (s *Simulator) AddNode(node *corev1.Node) {
	n := s.node(node.Name)
	if n == nil {
		n = newNodeInfo(node.Name)
		s.nodes = append(s.nodes, n)
	}
	n.setNode(node)
}

// RemoveNode takes a node and its pods out.
func (s *Simulator) RemoveNode(name string) {
	s.nodes = slices.DeleteFunc(s.nodes, func(n *nodeInfo) bool { return n.name == name })
}

// AddPod counts pod's requests, ports and owner on node, as a pod bound
// there; it reports false if there is no such node.
func (s *Simulator) AddPod(pod *corev1.Pod, node string) bool {
	n := s.node(node)
	if n == nil {
		return false
	}
	u := usageOf(pod)
	n.addUsage(&u)
	return true
}

// Fits returns nil if pod fits node now, else an error saying why in
// Kubernetes' words ("0/1 nodes are available: 1 Insufficient cpu.").
func (s *Simulator) Fits(pod *corev1.Pod, node string) error {
	n := s.node(node)
	if n == nil {
		return &fitError{}
	}
	var d diagnosis
	if fits(newPodInfo(pod), n, &d) {
		return nil
	}
	return &fitError{numNodes: 1, reasons: d.reasons()}
}

// Place puts pod on the first node, in the order nodes were added, that
// fits it and that skip (nil: none) does not rule out, and counts it
// there. It returns the node's name, or "" if none fits.
func (s *Simulator) Place(pod *corev1.Pod, skip func(node string) bool) string {
	p := newPodInfo(pod)
	var d diagnosis
	for _, n := range s.nodes {
		if skip != nil && skip(n.name) {
			continue
		}
		if fits(p, n, &d) {
			n.addUsage(&p.podUsage)
			return n.name
		}
	}
	return ""
}

// Nodes lists the nodes' names in the order they were added.
func (s *Simulator) Nodes() []string {
	out := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = n.name
	}
	return out
}

// Clone returns a copy whose changes leave s as it is.
func (s *Simulator) Clone() *Simulator {
	out := &Simulator{nodes: make([]*nodeInfo, len(s.nodes))}
	for i, n := range s.nodes {
		c := *n
		c.requested.scalars = slices.Clone(n.requested.scalars)
		c.nonzero.scalars = slices.Clone(n.nonzero.scalars)
		c.ports = slices.Clone(n.ports)
		c.owners = maps.Clone(n.owners)
		out.nodes[i] = &c
	}
	return out
}

func (s *Simulator) node(name string) *nodeInfo {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// PodRequests is what pod needs on a node, computed as the scheduler
// does (containers, sidecars, init containers' peak, overhead).
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	r := podRequests(pod, false)
	out := corev1.ResourceList{}
	if r.milliCPU > 0 {
		out[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.milliCPU, resource.DecimalSI)
	}
	if r.memory > 0 {
		out[corev1.ResourceMemory] = *resource.NewQuantity(r.memory, resource.BinarySI)
	}
	if r.ephemeral > 0 {
		out[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(r.ephemeral, resource.BinarySI)
	}
	for _, sc := range r.scalars {
		if sc.value > 0 {
			out[sc.name] = *resource.NewQuantity(sc.value, resource.DecimalSI)
		}
	}
	return out
}
