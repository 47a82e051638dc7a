package job

import (
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// isFinished: the Job has its final condition, Complete or Failed.
func isFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == v1.ConditionTrue {
			return true
		}
	}
	return false
}

// trueCondition returns the Job's condition of type t if it is True.
func trueCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	if c := findCondition(job.Status.Conditions, t); c != nil && c.Status == v1.ConditionTrue {
		return c
	}
	return nil
}

func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// newCondition returns a True condition, probed and changed now.
func (c *Controller) newCondition(t batchv1.JobConditionType, reason, message string) *batchv1.JobCondition {
	now := metav1.NewTime(c.clock.Now())
	return &batchv1.JobCondition{Type: t, Status: v1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now, Reason: reason, Message: message}
}

// ensureCondition sets the Job's condition of type t and reports whether it
// changed. A condition that does not exist is not added False: from
// nothing to False says nothing.
func (c *Controller) ensureCondition(job *batchv1.Job, t batchv1.JobConditionType, status v1.ConditionStatus, reason, message string) bool {
	cond := c.newCondition(t, reason, message)
	cond.Status = status
	if existing := findCondition(job.Status.Conditions, t); existing != nil {
		if existing.Status == status && existing.Reason == reason && existing.Message == message {
			return false
		}
		*existing = *cond
		return true
	}
	if status == v1.ConditionFalse {
		return false
	}
	job.Status.Conditions = append(job.Status.Conditions, *cond)
	return true
}
