package scheduler

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// fits runs the filters in Kubernetes' order and stops at the first that
// fails, recording why in d. The cheapest and most selective come first.
func fits(p *podInfo, n *nodeInfo, d *diagnosis) bool {
	if !n.ready {
		d.add(reasonNotReady)
		return false
	}
	if n.unschedulable && !p.toleratesUnschedulable {
		d.add(reasonUnschedulable)
		return false
	}
	if t := untoleratedTaint(p.tolerations, n.hardTaints); t != nil {
		d.addTaint(t)
		return false
	}
	if !matchesNodeSelector(p, n) {
		d.add(reasonNodeAffinity)
		return false
	}
	if len(p.ports) > 0 && portsConflict(p.ports, n.ports) {
		d.add(reasonHostPorts)
		return false
	}
	if !fitsResources(p, n, d) {
		return false
	}
	return p.volumes == nil || p.volumes.fits(n, d)
}

// fitsResources checks requests against what is left of allocatable. Like
// Kubernetes it reports every resource that is short, and a resource the pod
// does not request is never short (even on an over-committed node).
func fitsResources(p *podInfo, n *nodeInfo, d *diagnosis) bool {
	ok := true
	if n.pods+1 > n.allowedPods {
		d.add(reasonTooManyPods)
		ok = false
	}
	r := &p.req
	if r.milliCPU == 0 && r.memory == 0 && r.ephemeral == 0 && len(r.scalars) == 0 {
		return ok
	}
	if r.milliCPU > 0 && r.milliCPU > n.alloc.milliCPU-n.requested.milliCPU {
		d.add(reasonCPU)
		ok = false
	}
	if r.memory > 0 && r.memory > n.alloc.memory-n.requested.memory {
		d.add(reasonMemory)
		ok = false
	}
	if r.ephemeral > 0 && r.ephemeral > n.alloc.ephemeral-n.requested.ephemeral {
		d.add(reasonEphemeral)
		ok = false
	}
	for _, s := range r.scalars {
		if s.value > 0 && s.value > n.alloc.scalar(s.name)-n.requested.scalar(s.name) {
			d.addScalar(s.name)
			ok = false
		}
	}
	return ok
}

func portsConflict(want, used []hostPort) bool {
	for _, w := range want {
		for _, u := range used {
			if w.conflicts(u) {
				return true
			}
		}
	}
	return false
}

// untoleratedTaint returns the first taint no toleration matches, as the
// TaintToleration filter reports only that one.
func untoleratedTaint(tols []corev1.Toleration, taints []corev1.Taint) *corev1.Taint {
	for i := range taints {
		if !tolerated(tols, &taints[i]) {
			return &taints[i]
		}
	}
	return nil
}

func tolerated(tols []corev1.Toleration, t *corev1.Taint) bool {
	for i := range tols {
		if toleratesTaint(&tols[i], t) {
			return true
		}
	}
	return false
}

// toleratesTaint mirrors corev1.Toleration.ToleratesTaint without its logger
// and feature-gate arguments: an empty key matches every key, an empty effect
// every effect; Lt and Gt compare integer values.
func toleratesTaint(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "", corev1.TolerationOpEqual:
		return tol.Value == t.Value
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpLt, corev1.TolerationOpGt:
		tv, err1 := strconv.ParseInt(tol.Value, 10, 64)
		nv, err2 := strconv.ParseInt(t.Value, 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if tol.Operator == corev1.TolerationOpLt {
			return nv < tv
		}
		return nv > tv
	}
	return false
}
