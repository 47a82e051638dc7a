package statefulset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// round is one sync's view of a set: the set, the set as of its current
// and update revisions, and the revisions' names.
type round struct {
	c                     *Controller
	set                   *appsv1.StatefulSet
	currentSet, updateSet *appsv1.StatefulSet
	current, update       string
	now                   time.Time
}

func (r *round) monotonic() bool {
	return r.set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
}

func (r *round) healthy(pod *v1.Pod) bool {
	return isHealthy(pod, r.set.Spec.MinReadySeconds, r.now)
}

// partition is the lowest ordinal index a RollingUpdate replaces.
func (r *round) partition() int {
	u := r.set.Spec.UpdateStrategy.RollingUpdate
	if u == nil || u.Partition == nil {
		return 0
	}
	return int(*u.Partition)
}

// newPodAt returns the pod to create at index i of the wanted replicas: of
// the current revision below a RollingUpdate's partition, else of the
// update revision (OnDelete included: a pod the user deleted comes back
// updated).
func (r *round) newPodAt(i int) *v1.Pod {
	ord := startOrdinal(r.set) + i
	if r.set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && i < r.partition() {
		return newPod(r.currentSet, ord, r.current)
	}
	return newPod(r.updateSet, ord, r.update)
}

// manage moves the set's pods one step toward the spec, as upstream's
// updateStatefulSet: make every wanted ordinal exist (in order and waiting
// for each to be Running and Ready unless Parallel), remove the ordinals
// beyond replicas (highest first), then roll pods to the update revision.
// pods are the set's pods from the cache; they are not modified.
func (r *round) manage(ctx context.Context, pods []*v1.Pod) error {
	set := r.set
	n, start := replicasOf(set), startOrdinal(set)
	replicas := make([]*v1.Pod, n)
	var condemned []*v1.Pod
	for _, p := range pods {
		if inOrdinalRange(set, p) {
			replicas[ordinalOf(p)-start] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	sortByOrdinal(condemned)
	monotonic := r.monotonic()

	for i, pod := range replicas {
		if pod == nil {
			// Not yet seen (so never healthy) for the rest of the round.
			replicas[i] = r.newPodAt(i)
			if err := r.createPod(ctx, replicas[i]); err != nil {
				return err
			}
			if monotonic {
				return nil
			}
			continue
		}
		if isFailed(pod) || isSucceeded(pod) {
			// A pod that stopped for good is replaced under the same name:
			// delete it now, create it once it is gone.
			if !isTerminating(pod) {
				if err := r.deletePod(ctx, pod); err != nil {
					return err
				}
			}
			if monotonic {
				return nil
			}
			continue
		}
		if isTerminating(pod) || !r.healthy(pod) {
			if monotonic {
				return nil // wait for it
			}
			continue
		}
		if err := r.fixPod(ctx, pod); err != nil {
			return err
		}
	}

	// Scale down, highest ordinal first. In order, one at a time, each
	// gone before the next.
	for i := len(condemned) - 1; i >= 0; i-- {
		pod := condemned[i]
		if isTerminating(pod) {
			if monotonic {
				return nil
			}
			continue
		}
		if err := r.fixClaims(ctx, pod); err != nil {
			return err
		}
		if err := r.deletePod(ctx, pod); err != nil {
			return err
		}
		if monotonic {
			return nil
		}
	}

	if set.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return nil
	}
	return r.rollingUpdate(ctx, replicas)
}

// rollingUpdate replaces pods of another revision, from the highest
// ordinal down to the partition: one at a time, each Running and Ready
// before the next, or maxUnavailable at a time.
func (r *round) rollingUpdate(ctx context.Context, replicas []*v1.Pod) error {
	partition := r.partition()
	maxUnavailable := 1
	if u := r.set.Spec.UpdateStrategy.RollingUpdate; u != nil && u.MaxUnavailable != nil {
		v, err := intstr.GetScaledValueFromIntOrPercent(u.MaxUnavailable, len(replicas), false)
		if err == nil {
			maxUnavailable = max(v, 1)
		}
	}
	unavailable := 0
	for _, p := range replicas {
		if !r.healthy(p) {
			unavailable++
		}
	}
	var victims []*v1.Pod
	for i := len(replicas) - 1; i >= partition && unavailable+len(victims) < maxUnavailable; i-- {
		p := replicas[i]
		if revisionOf(p) != r.update && !isTerminating(p) {
			victims = append(victims, p)
			continue
		}
		// One at a time (the default): wait for the replaced pod to be
		// ready before the next.
		if maxUnavailable == 1 && !r.healthy(p) {
			return nil
		}
	}
	for _, p := range victims {
		if err := r.deletePod(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// status computes the set's status from its pods, as upstream's
// computeReplicaStatus, and completes a rolling update whose pods all run
// the update revision.
func (r *round) status(pods []*v1.Pod, collisionCount int32) *appsv1.StatefulSetStatus {
	s := r.set.Status.DeepCopy()
	s.ObservedGeneration = r.set.Generation
	s.CurrentRevision, s.UpdateRevision = r.current, r.update
	s.CollisionCount = &collisionCount
	s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.CurrentReplicas, s.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, p := range pods {
		if isCreated(p) {
			s.Replicas++
		}
		if isRunningAndReady(p) {
			s.ReadyReplicas++
			if isRunningAndAvailable(p, r.set.Spec.MinReadySeconds, r.now) {
				s.AvailableReplicas++
			}
		}
		if isCreated(p) && !isTerminating(p) {
			if revisionOf(p) == r.current {
				s.CurrentReplicas++
			}
			if revisionOf(p) == r.update {
				s.UpdatedReplicas++
			}
		}
	}
	if r.set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		s.UpdatedReplicas == s.Replicas && s.ReadyReplicas == s.Replicas {
		s.CurrentReplicas, s.CurrentRevision = s.UpdatedReplicas, s.UpdateRevision
	}
	return s
}

// minReadyRecheck is when to look again at pods that are ready but not yet
// available.
func (c *Controller) minReadyRecheck(set *appsv1.StatefulSet) time.Duration {
	return time.Duration(set.Spec.MinReadySeconds)*time.Second + time.Second
}
