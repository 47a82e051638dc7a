package replicaset

import (
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// podDeletionCostAnnotation lets users say which pods of a ReplicaSet to
// delete first (lower cost first), as in Kubernetes.
const podDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete picks n of pods to delete, the least valuable first, without
// modifying pods. related are the pods of the ReplicaSet's siblings (same
// owner); a pod sharing its node with many of them goes first, which spreads
// the survivors.
func podsToDelete(pods, related []*v1.Pod, n int) []*v1.Pod {
	if n >= len(pods) {
		return append([]*v1.Pod(nil), pods...)
	}
	onNode := make(map[string]int)
	for _, p := range related {
		if controllerutil.IsPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := make([]rankedPod, len(pods))
	for i, p := range pods {
		ranked[i] = rankedPod{pod: p, colocated: onNode[p.Spec.NodeName]}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return deleteBefore(ranked[i], ranked[j]) })
	out := make([]*v1.Pod, n)
	for i := range out {
		out[i] = ranked[i].pod
	}
	return out
}

type rankedPod struct {
	pod       *v1.Pod
	colocated int
}

var phaseRank = map[v1.PodPhase]int{v1.PodPending: 0, v1.PodUnknown: 1, v1.PodRunning: 2}

// deleteBefore orders pods for deletion as Kubernetes' ActivePodsWithRanks
// does (without its logarithmic scale-down buckets): unscheduled, then
// pending < unknown < running, not ready, lower deletion cost, more pods on
// the same node, ready for less time, more restarts, newer.
func deleteBefore(a, b rankedPod) bool {
	pa, pb := a.pod, b.pod
	if pa.Spec.NodeName != pb.Spec.NodeName && (pa.Spec.NodeName == "" || pb.Spec.NodeName == "") {
		return pa.Spec.NodeName == ""
	}
	if ra, rb := phaseRank[pa.Status.Phase], phaseRank[pb.Status.Phase]; ra != rb {
		return ra < rb
	}
	readyA, readyB := controllerutil.IsPodReady(pa), controllerutil.IsPodReady(pb)
	if readyA != readyB {
		return !readyA
	}
	if ca, cb := deletionCost(pa), deletionCost(pb); ca != cb {
		return ca < cb
	}
	if a.colocated != b.colocated {
		return a.colocated > b.colocated
	}
	if readyA && readyB {
		ta, tb := readySince(pa), readySince(pb)
		if !ta.Equal(tb) {
			return afterOrZero(ta, tb)
		}
	}
	if ra, rb := maxRestarts(pa), maxRestarts(pb); ra != rb {
		return ra > rb
	}
	ta, tb := pa.CreationTimestamp.Time, pb.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return afterOrZero(ta, tb)
	}
	return false
}

// afterOrZero orders a zero time first, then later times first.
func afterOrZero(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b)
}

func readySince(pod *v1.Pod) time.Time {
	if c := controllerutil.PodReadyCondition(&pod.Status); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func deletionCost(pod *v1.Pod) int64 {
	v, ok := pod.Annotations[podDeletionCostAnnotation]
	if !ok {
		return 0
	}
	cost, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0 // the API server validates it; be lenient, like a missing one
	}
	return cost
}

func maxRestarts(pod *v1.Pod) int32 {
	var m int32
	for _, cs := range pod.Status.ContainerStatuses {
		m = max(m, cs.RestartCount)
	}
	return m
}
