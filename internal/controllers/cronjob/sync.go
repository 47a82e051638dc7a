package cronjob

import (
	"context"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/cron"
)

// Event reasons, Kubernetes' (kubectl describe shows them).
const (
	reasonSuccessfulCreate           = "SuccessfulCreate"
	reasonFailedCreate               = "FailedCreate"
	reasonSuccessfulDelete           = "SuccessfulDelete"
	reasonFailedDelete               = "FailedDelete"
	reasonFailedGet                  = "FailedGet"
	reasonSawCompletedJob            = "SawCompletedJob"
	reasonUnexpectedJob              = "UnexpectedJob"
	reasonMissingJob                 = "MissingJob"
	reasonMissSchedule               = "MissSchedule"
	reasonJobAlreadyActive           = "JobAlreadyActive"
	reasonTooManyMissedTimes         = "TooManyMissedTimes"
	reasonUnknownTimeZone            = "UnknownTimeZone"
	reasonUnparseableSchedule        = "UnparseableSchedule"
	reasonUnparseableCronJobSchedule = "UnParseableCronJobSchedule"
	reasonInvalidSchedule            = "InvalidSchedule"
	reasonUnsupportedSchedule        = "UnsupportedSchedule"
)

// sync syncs one CronJob and queues it again for its next time.
func (c *Controller) sync(ctx context.Context, key string) error {
	after, err := c.syncKey(ctx, key)
	if err != nil {
		return err
	}
	if after != nil {
		c.queue.AddAfter(key, *after)
	}
	return nil
}

// syncKey is Kubernetes' sync: it deletes finished Jobs beyond the history
// limits, reconciles status with the Jobs, starts the Job due if any, and
// writes status once. It returns when to sync again: nil (a suspended or
// broken CronJob) waits for a change.
func (c *Controller) syncKey(ctx context.Context, key string) (*time.Duration, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, fmt.Errorf("cronjob key %q: %w", key, err)
	}
	cj, err := c.cjLister.CronJobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get cronjob %s: %w", key, err)
	}
	jobs, err := c.jobsOf(cj)
	if err != nil {
		return nil, err
	}
	cj = cj.DeepCopy()
	deleted := c.cleanupFinishedJobs(ctx, cj, jobs)
	after, changed, syncErr := c.syncCronJob(ctx, cj, jobs, deleted)
	if syncErr != nil {
		c.logger.Debug("sync failed", "cronjob", key, "err", syncErr)
	}
	if changed || len(deleted) > 0 {
		if _, err := c.client.BatchV1().CronJobs(namespace).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("update status of cronjob %s: %w", key, err)
		}
	}
	if after != nil {
		c.logger.Debug("requeueing", "cronjob", key, "after", *after)
		return after, nil
	}
	return nil, syncErr
}

// jobsOf lists the Jobs cj controls: all of them, not only those matching
// the template's labels, which may have changed since. Unlike Kubernetes,
// which matches the owner's name only, the uid must match too: Jobs left
// by a deleted CronJob of the same name are not this one's.
func (c *Controller) jobsOf(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobLister.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list jobs of cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	var out []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.Kind == controllerKind.Kind && ref.Name == cj.Name && ref.UID == cj.UID {
			out = append(out, j)
		}
	}
	return out, nil
}

// syncCronJob is Kubernetes' function of the same name: it updates cj's
// status from jobs (the Jobs cj controls, less those in deleted, which
// cleanup just deleted), and starts the Job due, if any. It returns when to
// sync again, whether the status changed, and an error to retry on.
func (c *Controller) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, deleted map[types.UID]bool) (*time.Duration, bool, error) {
	now := c.clock.Now()
	changed, err := c.reconcileJobs(ctx, cj, jobs, deleted)
	if err != nil {
		return nil, changed, err
	}
	key := keyOf(cj.Namespace, cj.Name)

	if cj.DeletionTimestamp != nil {
		return nil, changed, nil
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonUnknownTimeZone, "invalid timeZone: %q: %s", *tz, err)
			return nil, changed, nil
		}
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		c.logger.Debug("suspended, not starting a job", "cronjob", key)
		return nil, changed, nil
	}
	sched, err := parseSchedule(cj, c.recorder)
	if err != nil {
		// A user's error: nothing to do until the spec changes.
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonUnparseableSchedule, "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return nil, changed, nil
	}
	scheduled, err := c.nextScheduleTime(cj, now, sched)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonInvalidSchedule, "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return nil, changed, nil
	}
	requeue := func() (*time.Duration, bool, error) {
		return ptr.To(nextScheduleTimeDuration(cj, now, sched)), changed, nil
	}
	if scheduled == nil {
		return requeue()
	}
	// Kubernetes' check, kept although nextScheduleTime already looks no
	// further back than the deadline, so that it never holds.
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonMissSchedule, "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return requeue()
	}
	name := getJobName(cj, *scheduled)
	if inActiveListByName(cj, cj.Namespace, name) || cj.Status.LastScheduleTime.Equal(&metav1.Time{Time: *scheduled}) {
		c.logger.Debug("scheduled time already processed", "cronjob", key, "scheduled", *scheduled)
		return requeue()
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			// The time stays due: it starts when the active Job finishes,
			// if still within startingDeadlineSeconds.
			c.logger.Debug("prior job still active, concurrency policy Forbid", "cronjob", key)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, reasonJobAlreadyActive, "Not starting job because prior execution is running and concurrency policy is Forbid")
			return requeue()
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range slices.Clone(cj.Status.Active) {
			c.logger.Debug("replacing job still active", "cronjob", key, "job", ref.Name)
			job, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedGet, "Get job: %v", err)
				return nil, changed, fmt.Errorf("get job %s/%s to replace: %w", ref.Namespace, ref.Name, err)
			}
			if err := c.removeJob(ctx, cj, job); err != nil {
				return nil, changed, fmt.Errorf("replace job %s/%s: %w", job.Namespace, job.Name, err)
			}
			changed = true
		}
	}

	job, err := c.createJob(ctx, cj, *scheduled)
	if err != nil {
		return nil, changed, err
	}
	if job == nil {
		// Kubernetes returns without a requeue here, leaving the CronJob
		// to the next event; waiting for the next time is as cheap.
		return requeue()
	}
	ref, err := reference.GetReference(scheme.Scheme, job)
	if err != nil {
		return nil, changed, fmt.Errorf("reference to job %s/%s: %w", job.Namespace, job.Name, err)
	}
	cj.Status.Active = append(cj.Status.Active, *ref)
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
	changed = true
	return requeue()
}

// reconcileJobs brings cj's active list and last success time up to date
// with jobs and reports whether it changed them.
func (c *Controller) reconcileJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, deleted map[types.UID]bool) (bool, error) {
	changed := false
	// The cache may hold a CronJob older than its Jobs (the status write
	// listing a new Job not seen yet): read it again before calling a Job
	// unexpected. (Kubernetes continues with the fresh copy for the rest of
	// its loop but writes the stale one; here the fresh one is used
	// throughout, less the Jobs cleanup has just deleted.)
	for _, j := range jobs {
		if inActiveList(cj, j.UID) || isJobFinished(j) {
			continue
		}
		fresh, err := c.client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
		if err != nil {
			return changed, fmt.Errorf("get cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
		}
		if fresh.UID == cj.UID {
			*cj = *fresh
			for uid := range deleted {
				deleteFromActiveList(cj, uid)
			}
		}
		break
	}

	children := make(map[types.UID]bool, len(jobs))
	for _, j := range jobs {
		children[j.UID] = true
		found := inActiveList(cj, j.UID)
		finished, condition := finishedCondition(j)
		switch {
		case !found && !finished:
			// Created by someone else (kubectl create job --from), or by
			// this controller just before it failed to write status.
			c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonUnexpectedJob, "Saw a job that the controller did not create or forgot: %s", j.Name)
		case finished:
			if found {
				deleteFromActiveList(cj, j.UID)
				c.recorder.Eventf(cj, corev1.EventTypeNormal, reasonSawCompletedJob, "Saw completed job: %s, condition: %v", j.Name, condition)
				changed = true
			}
			// Active or not, a success counts.
			if condition == batchv1.JobComplete && j.Status.CompletionTime != nil {
				if last := cj.Status.LastSuccessfulTime; last == nil || j.Status.CompletionTime.After(last.Time) {
					cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
					changed = true
				}
			}
		}
	}

	// An active Job that is gone would block a Forbid CronJob forever. Ask
	// the API, not the cache, which may lag behind a creation.
	for _, ref := range slices.Clone(cj.Status.Active) {
		if children[ref.UID] {
			continue
		}
		_, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			c.recorder.Eventf(cj, corev1.EventTypeNormal, reasonMissingJob, "Active job went missing: %v", ref.Name)
			deleteFromActiveList(cj, ref.UID)
			changed = true
		case err != nil:
			return changed, fmt.Errorf("get active job %s/%s: %w", ref.Namespace, ref.Name, err)
		}
	}
	return changed, nil
}

// nextScheduleTime returns the most recent time cj is due at or before
// now, nil if none, warning when it has missed too many.
func (c *Controller) nextScheduleTime(cj *batchv1.CronJob, now time.Time, sched *cron.Schedule) (*time.Time, error) {
	_, mostRecent, m, err := mostRecentScheduleTime(cj, now, sched, true)
	if mostRecent == nil || mostRecent.After(now) {
		return nil, err
	}
	if m == manyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonTooManyMissedTimes, "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
		c.logger.Info("too many missed times", "cronjob", keyOf(cj.Namespace, cj.Name))
	}
	return mostRecent, err
}

// createJob creates cj's Job for the scheduled time. It returns the Job to
// list as active: the new one, or one this controller created before but
// failed to record; nil (and no error) when there is nothing to record.
func (c *Controller) createJob(ctx context.Context, cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	req, err := jobFromTemplate(cj, scheduled)
	if err != nil {
		return nil, err
	}
	job, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, req, metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, fmt.Errorf("create job %s/%s: %w", req.Namespace, req.Name, err)
	case apierrors.IsAlreadyExists(err):
		existing, err := c.client.BatchV1().Jobs(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get existing job %s/%s: %w", req.Namespace, req.Name, err)
		}
		// Someone else's Job of that name, or one already listed.
		if !metav1.IsControlledBy(existing, cj) || inActiveList(cj, existing.UID) {
			return nil, nil
		}
		c.logger.Info("job already exists", "cronjob", keyOf(cj.Namespace, cj.Name), "job", req.Name)
		return existing, nil
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedCreate, "Error creating job: %v", err)
		return nil, fmt.Errorf("create job %s/%s: %w", req.Namespace, req.Name, err)
	}
	c.logger.Debug("created job", "cronjob", keyOf(cj.Namespace, cj.Name), "job", job.Name)
	c.recorder.Eventf(cj, corev1.EventTypeNormal, reasonSuccessfulCreate, "Created job %v", job.Name)
	return job, nil
}

// cleanupFinishedJobs deletes the oldest finished Jobs beyond cj's history
// limits, and returns those it deleted.
func (c *Controller) cleanupFinishedJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) map[types.UID]bool {
	if cj.Spec.SuccessfulJobsHistoryLimit == nil && cj.Spec.FailedJobsHistoryLimit == nil {
		return nil
	}
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch _, condition := finishedCondition(j); condition {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	deleted := map[types.UID]bool{}
	if limit := cj.Spec.SuccessfulJobsHistoryLimit; limit != nil {
		c.removeOldestJobs(ctx, cj, succeeded, int(*limit), deleted)
	}
	if limit := cj.Spec.FailedJobsHistoryLimit; limit != nil {
		c.removeOldestJobs(ctx, cj, failed, int(*limit), deleted)
	}
	return deleted
}

// removeOldestJobs deletes the oldest of jobs (by start time, then name;
// Jobs not started last) beyond limit, recording them in deleted. A
// failed deletion is retried at the next sync.
func (c *Controller) removeOldestJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, limit int, deleted map[types.UID]bool) {
	n := len(jobs) - limit
	if n <= 0 {
		return
	}
	jobs = slices.Clone(jobs)
	slices.SortFunc(jobs, byStartTime)
	for _, j := range jobs[:n] {
		if c.removeJob(ctx, cj, j) == nil {
			deleted[j.UID] = true
		}
	}
}

// removeJob deletes job (its pods in the background) and drops it from
// cj's active list.
func (c *Controller) removeJob(ctx context.Context, cj *batchv1.CronJob, job *batchv1.Job) error {
	err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if apierrors.IsNotFound(err) {
		// Deleted already, by this controller on a cache that had not seen
		// it go, or by someone else: not worth Kubernetes' FailedDelete.
		deleteFromActiveList(cj, job.UID)
		return nil
	}
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, reasonFailedDelete, "Deleted job: %v", err)
		c.logger.Warn("delete job", "cronjob", keyOf(cj.Namespace, cj.Name), "job", job.Name, "err", err)
		return fmt.Errorf("delete job %s/%s: %w", job.Namespace, job.Name, err)
	}
	deleteFromActiveList(cj, job.UID)
	c.recorder.Eventf(cj, corev1.EventTypeNormal, reasonSuccessfulDelete, "Deleted job %v", job.Name)
	return nil
}

func byStartTime(a, b *batchv1.Job) int {
	as, bs := a.Status.StartTime, b.Status.StartTime
	switch {
	case as == nil && bs != nil:
		return 1
	case as != nil && bs == nil:
		return -1
	case as != nil && !as.Equal(bs):
		return as.Time.Compare(bs.Time)
	}
	if a.Name < b.Name {
		return -1
	}
	if a.Name > b.Name {
		return 1
	}
	return 0
}

// finishedCondition returns whether j has finished and how: Complete or
// Failed.
func finishedCondition(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func isJobFinished(j *batchv1.Job) bool {
	finished, _ := finishedCondition(j)
	return finished
}

func inActiveList(cj *batchv1.CronJob, uid types.UID) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

func inActiveListByName(cj *batchv1.CronJob, namespace, name string) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.Namespace == namespace && r.Name == name })
}

func deleteFromActiveList(cj *batchv1.CronJob, uid types.UID) {
	cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}
