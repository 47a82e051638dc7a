package controllerutil

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// PodReadyCondition returns the pod's Ready condition, or nil.
func PodReadyCondition(status *v1.PodStatus) *v1.PodCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == v1.PodReady {
			return &status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *v1.Pod) bool {
	c := PodReadyCondition(&pod.Status)
	return c != nil && c.Status == v1.ConditionTrue
}

// PodAvailableIn tells when a pod counts as available: ready for at least
// minReadySeconds. It returns ok=false for a pod that is not ready (or cannot
// become available without a status change); otherwise the time left until
// it becomes available, zero if it already is.
func PodAvailableIn(pod *v1.Pod, minReadySeconds int32, now time.Time) (left time.Duration, ok bool) {
	c := PodReadyCondition(&pod.Status)
	if c == nil || c.Status != v1.ConditionTrue {
		return 0, false
	}
	if minReadySeconds == 0 {
		return 0, true
	}
	// Without a transition time there is nothing to count from; Kubernetes
	// never considers such a pod available either.
	if c.LastTransitionTime.IsZero() {
		return 0, false
	}
	availableAt := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	if availableAt.Before(now) {
		return 0, true
	}
	// Available strictly after availableAt, as in Kubernetes' IsPodAvailable.
	return availableAt.Sub(now) + time.Nanosecond, true
}

// IsPodAvailable reports whether the pod has been ready for at least
// minReadySeconds at now.
func IsPodAvailable(pod *v1.Pod, minReadySeconds int32, now time.Time) bool {
	left, ok := PodAvailableIn(pod, minReadySeconds, now)
	return ok && left <= 0
}

// IsPodActive reports whether the pod counts toward a controller's replicas:
// not finished and not being deleted.
func IsPodActive(pod *v1.Pod) bool {
	return pod.Status.Phase != v1.PodSucceeded &&
		pod.Status.Phase != v1.PodFailed &&
		pod.DeletionTimestamp == nil
}

// FilterActivePods returns the active pods of pods.
func FilterActivePods(pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, p := range pods {
		if IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// NamespaceActive tells whether a namespace takes new objects: not being
// deleted.
func NamespaceActive(ns *v1.Namespace) bool {
	return ns.DeletionTimestamp == nil && ns.Status.Phase != v1.NamespaceTerminating
}
