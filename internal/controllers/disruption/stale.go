package disruption

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// staleDisruption says whether pod carries a DisruptionTarget condition
// that must be reset if the pod is still not terminating after the
// remaining wait. The kubelet's own condition (TerminationByKubelet) and
// terminal pods' conditions are never stale.
func (c *Controller) staleDisruption(pod *v1.Pod) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return false, 0
	}
	cond := disruptionTarget(pod)
	if cond == nil || cond.Status != v1.ConditionTrue || cond.Reason == v1.PodReasonTerminationByKubelet {
		return false, 0
	}
	return true, max(StalePodDisruptionTimeout-c.now().Sub(cond.LastTransitionTime.Time), 0)
}

func disruptionTarget(pod *v1.Pod) *v1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1.DisruptionTarget {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// syncStalePod resets a pod's stale DisruptionTarget condition to False:
// the eviction that set it did not delete the pod.
func (c *Controller) syncStalePod(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	pod, err := c.podLister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	stale, after := c.staleDisruption(pod)
	if !stale {
		return nil
	}
	if after > 0 {
		c.staleQueue.AddAfter(key, after)
		return nil
	}
	pod = pod.DeepCopy()
	cond := disruptionTarget(pod)
	cond.Status, cond.Reason, cond.Message = v1.ConditionFalse, "", ""
	cond.LastTransitionTime = metav1.NewTime(c.now())
	if _, err := c.client.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.logger.Info("reset stale DisruptionTarget condition", "pod", key)
	return nil
}
