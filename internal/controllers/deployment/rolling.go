package deployment

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
)

// rolloutRolling takes one step of a rolling update: grow the new
// ReplicaSet as far as maxSurge allows, else shrink old ones as far as
// maxUnavailable allows; each sync does one of the two, so every step is
// judged on fresh state.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	allRSs := withNew(oldRSs, newRS)

	scaledUp, err := c.reconcileNewReplicaSet(ctx, allRSs, newRS, d)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, allRSs, filterActive(oldRSs), newRS, d)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, allRSs, newRS, d)
}

func (c *Controller) reconcileNewReplicaSet(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	switch {
	case replicasOf(newRS) == *d.Spec.Replicas:
		return false, nil
	case replicasOf(newRS) > *d.Spec.Replicas:
		scaled, _, err := c.resize(ctx, newRS, *d.Spec.Replicas, d)
		return scaled, err
	}
	n, err := newRSNewReplicas(d, allRSs, newRS)
	if err != nil {
		return false, err
	}
	scaled, _, err := c.resize(ctx, newRS, n, d)
	return scaled, err
}

// reconcileOldReplicaSets shrinks old ReplicaSets while keeping at least
// spec.replicas-maxUnavailable pods available, counting the new
// ReplicaSet's unavailable pods against the budget (so a crash-looping new
// revision does not eat the old one). Unhealthy old pods go first: removing
// them costs no availability.
func (c *Controller) reconcileOldReplicaSets(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if replicaCount(oldRSs) == 0 {
		return false, nil
	}
	maxScaledDown := oldScaleDownLimit(d, allRSs, newRS)
	if maxScaledDown <= 0 {
		return false, nil
	}
	oldRSs, cleaned, err := c.cleanupUnhealthyReplicas(ctx, oldRSs, d, maxScaledDown)
	if err != nil {
		return false, err
	}
	scaledDown, err := c.scaleDownOldForRollingUpdate(ctx, withNew(oldRSs, newRS), oldRSs, d)
	if err != nil {
		return false, err
	}
	return cleaned+scaledDown > 0, nil
}

// cleanupUnhealthyReplicas removes up to maxCleanup unavailable replicas
// from old ReplicaSets, oldest first. It returns oldRSs as updated.
func (c *Controller) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sortByCreation(oldRSs)
	var total int32
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		unhealthy := replicasOf(rs) - rs.Status.AvailableReplicas
		if replicasOf(rs) == 0 || unhealthy <= 0 {
			continue
		}
		n := min(maxCleanup-total, unhealthy)
		_, updated, err := c.resize(ctx, rs, replicasOf(rs)-n, d)
		if err != nil {
			return nil, total, fmt.Errorf("clean up unhealthy replicas: %w", err)
		}
		total += n
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

// scaleDownOldForRollingUpdate removes old replicas, oldest ReplicaSet
// first, while the available pods stay above spec.replicas-maxUnavailable.
func (c *Controller) scaleDownOldForRollingUpdate(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	budget := availableAboveMinimum(d, allRSs)
	if budget <= 0 {
		return 0, nil
	}
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sortByCreation(oldRSs)
	var total int32
	for _, rs := range oldRSs {
		if total >= budget {
			break
		}
		if replicasOf(rs) == 0 {
			continue
		}
		n := min(replicasOf(rs), budget-total)
		if _, _, err := c.resize(ctx, rs, replicasOf(rs)-n, d); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// oldScaleDownLimit is how many old replicas a rolling update step may
// remove at most: all replicas minus the minimum available, minus the new
// ReplicaSet's unavailable ones (they cannot be counted on).
func oldScaleDownLimit(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	newUnavailable := replicasOf(newRS) - newRS.Status.AvailableReplicas
	return replicaCount(allRSs) - minAvailable - newUnavailable
}

// availableAboveMinimum is how many available pods exceed
// spec.replicas-maxUnavailable: the healthy old replicas a step may remove.
func availableAboveMinimum(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet) int32 {
	return availableReplicaCount(allRSs) - (*d.Spec.Replicas - maxUnavailable(d))
}
