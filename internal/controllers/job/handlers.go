package job

import (
	"reflect"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) addJob(obj any) {
	c.enqueueNow(obj.(*batchv1.Job))
}

func (c *Controller) updateJob(old, cur any) {
	oldJob, curJob := old.(*batchv1.Job), cur.(*batchv1.Job)
	if oldJob.UID != curJob.UID {
		// Deleted and recreated between two events: the old one's
		// expectations must not leak into the new one.
		c.deleteJob(cache.DeletedFinalStateUnknown{Key: keyOf(oldJob.Namespace, oldJob.Name), Obj: oldJob})
	}
	if curJob.Generation == oldJob.Generation {
		// A status update, most likely this controller's own.
		c.enqueueBatched(curJob)
	} else {
		c.enqueueNow(curJob)
	}
	// A finished Job's sync removes no finalizer: any pod left with one
	// must be cleaned up apart.
	if isFinished(curJob) {
		c.cleanupPodFinalizers(curJob)
	}
	// A new deadline on a running Job: come back when it passes.
	if curJob.Status.StartTime != nil {
		cur, old := curJob.Spec.ActiveDeadlineSeconds, oldJob.Spec.ActiveDeadlineSeconds
		if cur != nil && (old == nil || *old != *cur) {
			passed := c.clock.Since(curJob.Status.StartTime.Time)
			c.enqueueAfter(curJob, time.Duration(*cur)*time.Second-passed)
		}
	}
}

func (c *Controller) deleteJob(obj any) {
	job, ok := controllerutil.DeletedObject[*batchv1.Job](obj)
	if !ok {
		return
	}
	// The sync finds it gone and forgets its expectations.
	c.enqueueNow(job)
	c.cleanupPodFinalizers(job)
}

// cleanupPodFinalizers queues the pods of job that still have the tracking
// finalizer for its removal: job is gone or finished, no sync of it will.
func (c *Controller) cleanupPodFinalizers(job *batchv1.Job) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return
	}
	pods, err := c.podLister.Pods(job.Namespace).List(selector)
	if err != nil {
		return
	}
	for _, pod := range pods {
		if metav1.IsControlledBy(pod, job) && hasTrackingFinalizer(pod) {
			c.enqueueOrphanPod(pod)
		}
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*v1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (after a restart):
		// that is a deletion, not a creation, as far as expectations go.
		c.deletePod(pod, false)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		job := c.resolveControllerRef(pod.Namespace, ref)
		if job == nil {
			// Its Job is gone, perhaps before this cache saw the pod: no
			// sync will remove the finalizer.
			c.orphanIfJobsPod(pod, ref)
			return
		}
		c.expectations.CreationObserved(keyOf(job.Namespace, job.Name))
		c.enqueueBatched(job)
		return
	}
	// An orphan: nobody counts it, so its finalizer must go; and a Job may
	// adopt it. No creation is observed, nobody was waiting for an orphan.
	if hasTrackingFinalizer(pod) {
		c.enqueueOrphanPod(pod)
	}
	for _, job := range c.matchingJobs(pod) {
		c.enqueueBatched(job)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*v1.Pod), cur.(*v1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return // a periodic resync, nothing changed
	}
	if curPod.DeletionTimestamp != nil {
		// Graceful deletion: react now, not once the kubelet has removed
		// the pod.
		c.deletePod(curPod, false)
		return
	}
	// Whether the old pod had the finalizer does not matter: during an
	// ownership change it may have been added and removed again within
	// one event. What counts is the latest state.
	finalizerRemoved := !hasTrackingFinalizer(curPod)
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if job := c.resolveControllerRef(oldPod.Namespace, oldRef); job != nil {
			if finalizerRemoved {
				c.finalizerExpectations.observed(keyOf(job.Namespace, job.Name), curPod.UID)
			}
			c.enqueueBatched(job)
		}
	}
	if curRef != nil {
		job := c.resolveControllerRef(curPod.Namespace, curRef)
		if job == nil {
			c.orphanIfJobsPod(curPod, curRef)
			return
		}
		if finalizerRemoved {
			c.finalizerExpectations.observed(keyOf(job.Namespace, job.Name), curPod.UID)
		}
		c.enqueueBatched(job)
		return
	}
	if hasTrackingFinalizer(curPod) {
		c.enqueueOrphanPod(curPod)
	}
	if refChanged || !reflect.DeepEqual(curPod.Labels, oldPod.Labels) {
		for _, job := range c.matchingJobs(curPod) {
			c.enqueueBatched(job)
		}
	}
}

// deletePod handles a pod deleted (final) or being deleted.
func (c *Controller) deletePod(obj any, final bool) {
	pod, ok := controllerutil.DeletedObject[*v1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	hasFinalizer := hasTrackingFinalizer(pod)
	if ref == nil {
		// It may have belonged to a Job whose reference the garbage
		// collector removed.
		if hasFinalizer {
			c.enqueueOrphanPod(pod)
		}
		return
	}
	job := c.resolveControllerRef(pod.Namespace, ref)
	if job == nil || isFinished(job) {
		// No sync of a gone or finished Job removes the finalizer.
		if hasFinalizer {
			c.enqueueOrphanPod(pod)
		}
		return
	}
	key := keyOf(job.Namespace, job.Name)
	c.expectations.DeletionObserved(key, keyOf(pod.Namespace, pod.Name))
	// A pod gone for good has no finalizer any more, whatever the last
	// state the informer knew.
	if final || !hasFinalizer {
		c.finalizerExpectations.observed(key, pod.UID)
	}
	c.enqueueBatched(job)
}

// orphanIfJobsPod queues pod for the removal of its tracking finalizer if
// its controller is a Job this cache does not have; syncOrphanPod checks
// again.
func (c *Controller) orphanIfJobsPod(pod *v1.Pod, ref *metav1.OwnerReference) {
	if ref.Kind == controllerKind.Kind && ref.APIVersion == batchv1.SchemeGroupVersion.String() && hasTrackingFinalizer(pod) {
		c.enqueueOrphanPod(pod)
	}
}

// matchingJobs returns the Jobs whose selector matches pod.
func (c *Controller) matchingJobs(pod *v1.Pod) []*batchv1.Job {
	all, err := c.jobLister.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	out := controllerutil.Selecting(all, func(j *batchv1.Job) *metav1.LabelSelector { return j.Spec.Selector }, pod.Labels)
	if len(out) > 1 {
		c.logger.Warn("more than one Job selects pod", "pod", keyOf(pod.Namespace, pod.Name), "count", len(out))
	}
	return out
}
