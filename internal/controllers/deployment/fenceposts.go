package deployment

import (
	"fmt"
	"math"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kubernetes' API defaults, applied here too so that a Deployment stored
// without them (no defaulting on the way in) still behaves the same.
var (
	defaultMaxSurge       = intstr.FromString("25%")
	defaultMaxUnavailable = intstr.FromString("25%")
)

// applyDefaults fills the spec fields the controller dereferences, on a copy.
func applyDefaults(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		one := int32(1)
		d.Spec.Replicas = &one
	}
	if d.Spec.Strategy.Type == "" {
		d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if d.Spec.Strategy.RollingUpdate == nil {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := d.Spec.Strategy.RollingUpdate
		if ru.MaxSurge == nil {
			ru.MaxSurge = &defaultMaxSurge
		}
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = &defaultMaxUnavailable
		}
	}
}

func isRollingUpdate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

// resolveFenceposts resolves maxSurge (percentages rounded up) and
// maxUnavailable (rounded down) against desired. Validation forbids both
// being zero, but rounding down can make maxUnavailable zero; then it is 1,
// on the theory that surging might be impossible (quota) and a rollout must
// still progress.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (surge, unavailable int32, err error) {
	zero := intstr.FromInt32(0)
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, zero), int(desired), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, zero), int(desired), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// maxSurge is how many pods a rolling Deployment may run above
// spec.replicas; 0 for Recreate.
func maxSurge(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) {
		return 0
	}
	// An invalid value was refused by validation; treat it as zero.
	s, _, _ := resolveFenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, *d.Spec.Replicas)
	return s
}

// maxUnavailable is how many of spec.replicas a rolling Deployment may have
// unavailable; never more than spec.replicas, 0 for Recreate.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) || *d.Spec.Replicas == 0 {
		return 0
	}
	_, u, _ := resolveFenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, *d.Spec.Replicas)
	return min(u, *d.Spec.Replicas)
}

// newRSNewReplicas is the size the new ReplicaSet may grow to now: for a
// rolling update, up to spec.replicas+maxSurge pods in all ReplicaSets
// together, never beyond spec.replicas for the new one.
func newRSNewReplicas(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (int32, error) {
	switch d.Spec.Strategy.Type {
	case appsv1.RollingUpdateDeploymentStrategyType:
		total := replicaCount(allRSs)
		maxTotal := *d.Spec.Replicas + maxSurge(d)
		if total >= maxTotal {
			return replicasOf(newRS), nil
		}
		up := min(maxTotal-total, *d.Spec.Replicas-replicasOf(newRS))
		return replicasOf(newRS) + up, nil
	case appsv1.RecreateDeploymentStrategyType:
		return *d.Spec.Replicas, nil
	default:
		return 0, fmt.Errorf("deployment strategy %q is not supported", d.Spec.Strategy.Type)
	}
}

// isSaturated reports whether rs holds the whole Deployment: its size and
// its desired-replicas annotation equal spec.replicas and all are available.
func isSaturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := desiredReplicasAnnotation(rs)
	return ok && replicasOf(rs) == *d.Spec.Replicas && desired == *d.Spec.Replicas &&
		rs.Status.AvailableReplicas == *d.Spec.Replicas
}

// proportion estimates how many of toAdd replicas (negative when scaling
// down) rs should take in a scaling event during a rollout, given that added
// were already handed out: its share of the new total by its size relative
// to the total it was sized for (its max-replicas annotation), never more
// than what is left.
func proportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if rs == nil || replicasOf(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := replicaSetFraction(rs, d)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

// replicaSetFraction is how many replicas rs gains (or loses, negative) when
// the Deployment is resized to spec.replicas+maxSurge.
func replicaSetFraction(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	if *d.Spec.Replicas == 0 {
		return -replicasOf(rs)
	}
	total := *d.Spec.Replicas + maxSurge(d)
	annotated, ok := maxReplicasAnnotation(rs)
	if !ok || annotated == 0 {
		// Without the annotation the current size is the best guess; the
		// min/max in proportion keep the result within bounds anyway.
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	newSize := float64(replicasOf(rs)*total) / float64(annotated)
	return int32(math.Floor(newSize+0.5)) - replicasOf(rs)
}
