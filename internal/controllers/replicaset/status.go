package replicaset

import (
	"context"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// calculateStatus returns rs's status for its active pods, and how long until
// the next ready pod becomes available (0 if none is waiting on
// minReadySeconds). manageErr, the last create/delete failure, is reported as
// the ReplicaFailure condition until a sync succeeds.
func calculateStatus(rs *appsv1.ReplicaSet, pods []*v1.Pod, manageErr error, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	status := *rs.Status.DeepCopy()
	// Template labels are a superset of the selector, so fully labeled pods
	// are among the selected ones.
	template := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var fullyLabeled, ready, available int32
	var next time.Duration
	for _, pod := range pods {
		if template.Matches(labels.Set(pod.Labels)) {
			fullyLabeled++
		}
		left, isReady := controllerutil.PodAvailableIn(pod, rs.Spec.MinReadySeconds, now)
		if !isReady {
			continue
		}
		ready++
		if left <= 0 {
			available++
		} else if next == 0 || left < next {
			next = left
		}
	}

	failure := replicaFailure(rs.Status)
	switch {
	case manageErr != nil && failure == nil:
		reason := ""
		if diff := len(pods) - int(wantReplicas(rs)); diff < 0 {
			reason = "FailedCreate"
		} else if diff > 0 {
			reason = "FailedDelete"
		}
		status.Conditions = append(status.Conditions, appsv1.ReplicaSetCondition{
			Type:               appsv1.ReplicaSetReplicaFailure,
			Status:             v1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now),
			Reason:             reason,
			Message:            manageErr.Error(),
		})
	case manageErr == nil && failure != nil:
		status.Conditions = withoutReplicaFailure(status.Conditions)
	}

	status.Replicas = int32(len(pods))
	status.FullyLabeledReplicas = fullyLabeled
	status.ReadyReplicas = ready
	status.AvailableReplicas = available
	return status, next
}

func replicaFailure(status appsv1.ReplicaSetStatus) *appsv1.ReplicaSetCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == appsv1.ReplicaSetReplicaFailure {
			return &status.Conditions[i]
		}
	}
	return nil
}

func withoutReplicaFailure(conds []appsv1.ReplicaSetCondition) []appsv1.ReplicaSetCondition {
	var out []appsv1.ReplicaSetCondition
	for _, c := range conds {
		if c.Type != appsv1.ReplicaSetReplicaFailure {
			out = append(out, c)
		}
	}
	return out
}

// updateStatus writes status to rs (a copy the caller owns) if it or the
// observed generation changed, retrying once on a fresh read.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, status appsv1.ReplicaSetStatus) error {
	status.ObservedGeneration = rs.Generation
	if reflect.DeepEqual(rs.Status, status) {
		return nil
	}
	client := c.client.AppsV1().ReplicaSets(rs.Namespace)
	for i := 0; ; i++ {
		rs.Status = status
		_, err := client.UpdateStatus(ctx, rs, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if i >= statusUpdateRetries {
			return fmt.Errorf("update status of replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		fresh, getErr := client.Get(ctx, rs.Name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("update status of replicaset %s/%s: %w (and re-read: %w)", rs.Namespace, rs.Name, err, getErr)
		}
		// Keep the generation we acted on: claiming to have observed the
		// fresh one could hide a spec change this sync never saw.
		rs = fresh
	}
}
