package deployment

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

// deploymentComplete: every desired replica is updated and available, no
// old pod is left, and the latest spec was observed.
func deploymentComplete(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	return s.UpdatedReplicas == *d.Spec.Replicas &&
		s.Replicas == *d.Spec.Replicas &&
		s.AvailableReplicas == *d.Spec.Replicas &&
		s.ObservedGeneration >= d.Generation
}

// deploymentProgressing: compared with d's current status, new pods were
// added or became ready or available, or old pods went away.
func deploymentProgressing(d *appsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	old := d.Status
	return s.UpdatedReplicas > old.UpdatedReplicas ||
		s.Replicas-s.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		s.ReadyReplicas > old.ReadyReplicas ||
		s.AvailableReplicas > old.AvailableReplicas
}

// deploymentTimedOut: the Progressing condition has not been refreshed for
// progressDeadlineSeconds (or already says so).
func deploymentTimedOut(d *appsv1.Deployment, s *appsv1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	cond := getCondition(*s, appsv1.DeploymentProgressing)
	if cond == nil {
		return false
	}
	// A finished rollout seen again before the cache has the new RS's
	// condition is not a stalled one.
	switch cond.Reason {
	case reasonNewRSAvailable:
		return false
	case reasonTimedOut:
		return true
	}
	deadline := cond.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return deadline.Before(now)
}

// syncRolloutStatus writes status with the Progressing condition updated
// for the rollout's progress, and schedules a deadline check for a rollout
// that is not moving.
func (c *Controller) syncRolloutStatus(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	now := c.now()
	status := calculateStatus(allRSs, newRS, d, now)
	if !hasProgressDeadline(d) {
		removeCondition(&status, appsv1.DeploymentProgressing)
	}

	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	complete := status.Replicas == status.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !complete {
		subject := fmt.Sprintf("Deployment %q", d.Name)
		if newRS != nil {
			subject = fmt.Sprintf("ReplicaSet %q", newRS.Name)
		}
		t := metav1.NewTime(now)
		switch {
		case deploymentComplete(d, &status):
			setCondition(&status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, reasonNewRSAvailable,
				subject+" has successfully progressed.", t))
		case deploymentProgressing(d, &status):
			cond := newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, reasonReplicaSetUpdated,
				subject+" is progressing.", t)
			// Unlike setCondition, refresh lastUpdateTime even when the
			// reason stays: it is what the deadline counts from.
			if cur != nil {
				if cur.Status == v1.ConditionTrue {
					cond.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(&status, appsv1.DeploymentProgressing)
			}
			setCondition(&status, cond)
		case deploymentTimedOut(d, &status, now):
			setCondition(&status, newCondition(appsv1.DeploymentProgressing, v1.ConditionFalse, reasonTimedOut,
				subject+" has timed out progressing.", t))
		}
	}

	if failure := replicaFailure(allRSs, newRS); failure != nil {
		setCondition(&status, *failure)
	} else {
		removeCondition(&status, appsv1.DeploymentReplicaFailure)
	}

	if reflect.DeepEqual(d.Status, status) {
		c.requeueStuckDeployment(d, status, now)
		return nil
	}
	d.Status = status
	return c.updateStatus(ctx, d)
}

// requeueStuckDeployment schedules a sync for when d's progress deadline
// passes: if nothing changes until then, no event would otherwise wake it
// to report ProgressDeadlineExceeded.
func (c *Controller) requeueStuckDeployment(d *appsv1.Deployment, status appsv1.DeploymentStatus, now time.Time) {
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil {
		return
	}
	if deploymentComplete(d, &status) || cur.Reason == reasonTimedOut {
		return
	}
	after := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
	if after < time.Second {
		c.enqueueRateLimited(d)
		return
	}
	// A second more, against millisecond skew in AddAfter.
	c.enqueueAfter(d, after+time.Second)
}

// replicaFailure returns the ReplicaFailure condition of the new ReplicaSet,
// else of any old one, as a Deployment condition.
func replicaFailure(allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	for _, rss := range [][]*appsv1.ReplicaSet{{newRS}, allRSs} {
		for _, rs := range rss {
			if rs == nil {
				continue
			}
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure {
					dc := fromReplicaSetCondition(c)
					return &dc
				}
			}
		}
	}
	return nil
}

// checkPausedConditions records pausing and resuming in the Progressing
// condition, so time spent paused never counts toward the deadline.
func (c *Controller) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut {
		return nil // a reported failure stays reported
	}
	pausedCond := cond != nil && cond.Reason == reasonPaused
	now := metav1.NewTime(c.now())
	switch {
	case d.Spec.Paused && !pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionUnknown, reasonPaused, "Deployment is paused", now))
	case !d.Spec.Paused && pausedCond:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionUnknown, reasonResumed, "Deployment is resumed", now))
	default:
		return nil
	}
	return c.updateStatus(ctx, d)
}
