package cronjob

import (
	"reflect"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) addCronJob(obj any) {
	cj := obj.(*batchv1.CronJob)
	c.queue.Add(keyOf(cj.Namespace, cj.Name))
}

// updateCronJob queues a CronJob whose schedule or time zone changed for
// its next time under the new schedule (the delayed add replaces a later
// one already queued; an earlier one makes a sync that finds nothing due),
// any other one now.
func (c *Controller) updateCronJob(old, cur any) {
	oldCJ, curCJ := old.(*batchv1.CronJob), cur.(*batchv1.CronJob)
	key := keyOf(curCJ.Namespace, curCJ.Name)
	if oldCJ.Spec.Schedule == curCJ.Spec.Schedule && ptr.Equal(oldCJ.Spec.TimeZone, curCJ.Spec.TimeZone) {
		c.queue.Add(key)
		return
	}
	// No recorder: the sync warns about TZ in the schedule.
	sched, err := parseSchedule(curCJ, nil)
	if err != nil {
		c.logger.Info("unparseable schedule", "cronjob", key, "schedule", curCJ.Spec.Schedule, "err", err)
		c.recorder.Eventf(curCJ, corev1.EventTypeWarning, reasonUnparseableCronJobSchedule, "unparseable schedule for cronjob: %s", curCJ.Spec.Schedule)
		return
	}
	c.queue.AddAfter(key, nextScheduleTimeDuration(curCJ, c.clock.Now(), sched))
}

func (c *Controller) deleteCronJob(obj any) {
	cj, ok := controllerutil.DeletedObject[*batchv1.CronJob](obj)
	if !ok {
		return
	}
	c.queue.Add(keyOf(cj.Namespace, cj.Name))
}

func (c *Controller) addJob(obj any) {
	job := obj.(*batchv1.Job)
	if job.DeletionTimestamp != nil {
		// Seen for the first time already terminating (after a restart).
		c.deleteJob(job)
		return
	}
	if ref := metav1.GetControllerOf(job); ref != nil {
		c.enqueueOwner(job.Namespace, ref)
	}
}

func (c *Controller) updateJob(old, cur any) {
	oldJob, curJob := old.(*batchv1.Job), cur.(*batchv1.Job)
	if oldJob.ResourceVersion == curJob.ResourceVersion {
		return // a periodic resync, nothing changed
	}
	curRef, oldRef := metav1.GetControllerOf(curJob), metav1.GetControllerOf(oldJob)
	if oldRef != nil && !reflect.DeepEqual(curRef, oldRef) {
		c.enqueueOwner(oldJob.Namespace, oldRef)
	}
	if curRef != nil {
		c.enqueueOwner(curJob.Namespace, curRef)
	}
}

func (c *Controller) deleteJob(obj any) {
	job, ok := controllerutil.DeletedObject[*batchv1.Job](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(job); ref != nil {
		c.enqueueOwner(job.Namespace, ref)
	}
}

// enqueueOwner queues the CronJob ref points to, if it is still the same
// object (one recreated under the same name is not).
func (c *Controller) enqueueOwner(namespace string, ref *metav1.OwnerReference) {
	cj, ok := controllerutil.ResolveControllerRef(ref, controllerKind.Kind, c.cjLister.CronJobs(namespace).Get)
	if ok {
		c.queue.Add(keyOf(cj.Namespace, cj.Name))
	}
}
