package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// Requests the scheduler assumes for scoring when a container states none, as
// Kubernetes does, so that best-effort pods still spread across nodes.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

// resources is what the scheduler accounts for per pod and per node. Scalars
// hold extended resources and hugepages; a pod or node has few of them, so a
// slice beats a map for both lookups and allocation.
type resources struct {
	milliCPU  int64
	memory    int64
	ephemeral int64
	scalars   []scalar
}

type scalar struct {
	name  corev1.ResourceName
	value int64
}

func (r *resources) scalar(name corev1.ResourceName) int64 {
	for i := range r.scalars {
		if r.scalars[i].name == name {
			return r.scalars[i].value
		}
	}
	return 0
}

func (r *resources) addScalar(name corev1.ResourceName, v int64) {
	for i := range r.scalars {
		if r.scalars[i].name == name {
			r.scalars[i].value += v
			return
		}
	}
	r.scalars = append(r.scalars, scalar{name: name, value: v})
}

func (r *resources) maxScalar(name corev1.ResourceName, v int64) {
	for i := range r.scalars {
		if r.scalars[i].name == name {
			r.scalars[i].value = max(r.scalars[i].value, v)
			return
		}
	}
	r.scalars = append(r.scalars, scalar{name: name, value: v})
}

func (r *resources) add(o *resources) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	r.ephemeral += o.ephemeral
	for _, s := range o.scalars {
		r.addScalar(s.name, s.value)
	}
}

// sub removes o; scalars that drop to zero stay as entries, which is harmless
// and avoids reallocating when the same resource comes back.
func (r *resources) sub(o *resources) {
	r.milliCPU -= o.milliCPU
	r.memory -= o.memory
	r.ephemeral -= o.ephemeral
	for _, s := range o.scalars {
		r.addScalar(s.name, -s.value)
	}
}

func (r *resources) setMax(o *resources) {
	r.milliCPU = max(r.milliCPU, o.milliCPU)
	r.memory = max(r.memory, o.memory)
	r.ephemeral = max(r.ephemeral, o.ephemeral)
	for _, s := range o.scalars {
		r.maxScalar(s.name, s.value)
	}
}

func (r *resources) equal(o *resources) bool {
	if r.milliCPU != o.milliCPU || r.memory != o.memory || r.ephemeral != o.ephemeral {
		return false
	}
	for _, s := range r.scalars {
		if o.scalar(s.name) != s.value {
			return false
		}
	}
	for _, s := range o.scalars {
		if r.scalar(s.name) != s.value {
			return false
		}
	}
	return true
}

// addList adds a resource list. With nonZero, a missing cpu or memory counts
// as the scoring defaults (an explicit zero stays zero, as in Kubernetes).
// The "pods" resource is a node property, never a request.
func (r *resources) addList(l corev1.ResourceList, nonZero bool) {
	if nonZero {
		if _, ok := l[corev1.ResourceCPU]; !ok {
			r.milliCPU += defaultMilliCPURequest
		}
		if _, ok := l[corev1.ResourceMemory]; !ok {
			r.memory += defaultMemoryRequest
		}
	}
	for name, q := range l {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			if !nonZero {
				r.ephemeral += q.Value()
			}
		case corev1.ResourcePods:
		default:
			if !nonZero {
				r.addScalar(name, q.Value())
			}
		}
	}
}

// podRequests is what a pod needs on a node, following Kubernetes: the sum of
// its containers and sidecars (restartable init containers), at least the peak
// of any init container plus the sidecars started before it, plus overhead.
// Pod-level requests, when set, replace the aggregate for their resources.
// With nonZero, only cpu and memory are computed, with defaults for scoring.
func podRequests(pod *corev1.Pod, nonZero bool) resources {
	var sum resources
	for i := range pod.Spec.Containers {
		sum.addList(pod.Spec.Containers[i].Resources.Requests, nonZero)
	}
	var sidecars, initPeak resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		var r resources
		r.addList(c.Resources.Requests, nonZero)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.add(&r)
			initPeak.setMax(&sidecars)
			continue
		}
		r.add(&sidecars)
		initPeak.setMax(&r)
	}
	sum.add(&sidecars)
	sum.setMax(&initPeak)
	if pr := pod.Spec.Resources; pr != nil {
		if q, ok := pr.Requests[corev1.ResourceCPU]; ok {
			sum.milliCPU = q.MilliValue()
		}
		if q, ok := pr.Requests[corev1.ResourceMemory]; ok {
			sum.memory = q.Value()
		}
	}
	if pod.Spec.Overhead != nil {
		var o resources
		o.addList(pod.Spec.Overhead, false)
		if nonZero {
			o.ephemeral, o.scalars = 0, nil
		}
		sum.add(&o)
	}
	return sum
}

// nodeAllocatable reads a node's allocatable resources and pod capacity,
// falling back to capacity for an agent that reports no allocatable.
func nodeAllocatable(node *corev1.Node) (resources, int64) {
	l := node.Status.Allocatable
	if len(l) == 0 {
		l = node.Status.Capacity
	}
	var r resources
	r.addList(l, false)
	var pods int64
	if q, ok := l[corev1.ResourcePods]; ok {
		pods = q.Value()
	}
	return r, pods
}
