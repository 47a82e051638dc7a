package deployment

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scale resizes d's ReplicaSets after spec.replicas changed or while d is
// paused. With one active ReplicaSet it simply takes the new size; with a
// rollout in flight the change (up to spec.replicas+maxSurge in total) is
// spread over the active ReplicaSets in proportion to their sizes, so the
// rollout's balance is kept and the total never exceeds spec+maxSurge.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	if rs := findActiveOrLatest(newRS, oldRSs); rs != nil {
		if replicasOf(rs) == *d.Spec.Replicas {
			return nil
		}
		_, _, err := c.resize(ctx, rs, *d.Spec.Replicas, d)
		return err
	}
	// A saturated new ReplicaSet (adopted, say) leaves nothing to the old.
	if isSaturated(d, newRS) {
		for _, old := range filterActive(oldRSs) {
			if _, _, err := c.resize(ctx, old, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRollingUpdate(d) {
		return nil
	}
	allRSs := filterActive(withNew(oldRSs, newRS))
	sizes := proportionalSizes(d, allRSs)
	for _, rs := range allRSs {
		if _, _, err := c.scaleReplicaSet(ctx, rs, sizes[rs.Name], d); err != nil {
			// The Deployment is requeued; the next sync picks up from here.
			return err
		}
	}
	return nil
}

// proportionalSizes computes the new size of each active ReplicaSet when
// the Deployment's allowed total (spec.replicas+maxSurge) changed. It sorts
// allRSs: largest first, newer first when growing, older first when
// shrinking; the rounding leftover goes to the largest.
func proportionalSizes(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet) map[string]int32 {
	var allowed int32
	if *d.Spec.Replicas > 0 {
		allowed = *d.Spec.Replicas + maxSurge(d)
	}
	toAdd := allowed - replicaCount(allRSs)
	switch {
	case toAdd > 0:
		sortBySizeNewer(allRSs)
	case toAdd < 0:
		sortBySizeOlder(allRSs)
	}
	sizes := make(map[string]int32, len(allRSs))
	var added int32
	for _, rs := range allRSs {
		p := int32(0)
		if toAdd != 0 {
			p = proportion(rs, d, toAdd, added)
		}
		sizes[rs.Name] = replicasOf(rs) + p
		added += p
	}
	if len(allRSs) > 0 && toAdd != 0 {
		first := allRSs[0].Name
		sizes[first] = max(0, sizes[first]+toAdd-added)
	}
	return sizes
}

// resize is scaleReplicaSet when the size changes, a no-op otherwise.
func (c *Controller) resize(ctx context.Context, rs *appsv1.ReplicaSet, size int32, d *appsv1.Deployment) (bool, *appsv1.ReplicaSet, error) {
	if replicasOf(rs) == size {
		return false, rs, nil
	}
	return c.scaleReplicaSet(ctx, rs, size, d)
}

// scaleReplicaSet sets rs to size replicas and refreshes its replica
// annotations, recording a ScalingReplicaSet event when the size changed.
// It returns whether rs was resized and the ReplicaSet as written.
func (c *Controller) scaleReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet, size int32, d *appsv1.Deployment) (bool, *appsv1.ReplicaSet, error) {
	old := replicasOf(rs)
	resize := old != size
	desired, maxReplicas := *d.Spec.Replicas, *d.Spec.Replicas+maxSurge(d)
	if !resize && !replicasAnnotationsNeedUpdate(rs, desired, maxReplicas) {
		return false, rs, nil
	}
	cp := rs.DeepCopy()
	cp.Spec.Replicas = &size
	setReplicasAnnotations(cp, desired, maxReplicas)
	// cp carries the cached resourceVersion: if the cache is stale the
	// update conflicts instead of resizing from a wrong base.
	updated, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, fmt.Errorf("scale replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, size, err)
	}
	if !resize {
		return false, updated, nil
	}
	op := "up"
	if size < old {
		op = "down"
	}
	c.logger.Info("scaled replicaset", "deployment", keyOf(d.Namespace, d.Name), "replicaset", rs.Name, "from", old, "to", size)
	c.recorder.Eventf(d, v1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, old, size)
	return true, updated, nil
}
