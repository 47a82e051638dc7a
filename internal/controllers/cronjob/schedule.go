package cronjob

import (
	"fmt"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/cron"
)

// tooManyMissed is how many missed times mean something is wrong (a
// clock off by years, say) rather than a controller that was down for a
// weekend; Kubernetes' figure.
const tooManyMissed = 100

// missed says how many times a schedule fired unattended.
type missed int

const (
	noneMissed missed = iota
	fewMissed
	manyMissed
)

// parseSchedule parses cj's schedule in its time zone. A TZ= or CRON_TZ=
// prefix in the schedule (which validation refuses in new objects) wins
// over spec.timeZone, with a warning when recorder is not nil.
func parseSchedule(cj *batchv1.CronJob, recorder record.EventRecorder) (*cron.Schedule, error) {
	spec := cj.Spec.Schedule
	switch {
	case strings.Contains(spec, "TZ"):
		if recorder != nil {
			recorder.Eventf(cj, corev1.EventTypeWarning, reasonUnsupportedSchedule,
				"CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", spec)
		}
	case cj.Spec.TimeZone != nil:
		if _, err := time.LoadLocation(*cj.Spec.TimeZone); err == nil {
			spec = fmt.Sprintf("TZ=%s %s", *cj.Spec.TimeZone, spec)
		}
	}
	return cron.Parse(spec)
}

// mostRecentScheduleTime is Kubernetes' function of the same name. It
// returns the time scheduling counts from (the last schedule time, else
// the creation time, moved up to now - startingDeadlineSeconds when
// includeDeadline), the most recent time at or before now that the
// schedule fired after it (nil if none), and how many times it fired. The
// error is for a schedule that parses but fires less than a second apart
// or never ("0 0 30 2 *").
//
// The count is an estimate from the first two firing times, so that a
// schedule unattended for years is not walked one minute at a time.
func mostRecentScheduleTime(cj *batchv1.CronJob, now time.Time, sched *cron.Schedule, includeDeadline bool) (time.Time, *time.Time, missed, error) {
	earliest := cj.CreationTimestamp.Time
	if t := cj.Status.LastScheduleTime; t != nil {
		earliest = t.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; includeDeadline && d != nil {
		if deadline := now.Add(-time.Duration(*d) * time.Second); deadline.After(earliest) {
			earliest = deadline
		}
	}
	t1 := sched.Next(earliest)
	t2 := sched.Next(t1)
	if now.Before(t1) {
		return earliest, nil, noneMissed, nil
	}
	if now.Before(t2) {
		return earliest, &t1, noneMissed, nil
	}
	interval := int64(t2.Sub(t1).Round(time.Second).Seconds())
	if interval < 1 {
		return earliest, nil, noneMissed, fmt.Errorf("time difference between two schedules is less than 1 second")
	}
	count := int64(now.Sub(t1).Seconds())/interval + 1
	// Start one interval early and let Next find the real times: schedules
	// are not always evenly spaced ("30 6-16/4 * * 1-5").
	var mostRecent time.Time
	for t := sched.Next(t1.Add(time.Duration((count-2)*interval) * time.Second)); !t.After(now); t = sched.Next(t) {
		if t.IsZero() {
			break
		}
		mostRecent = t
	}
	m := fewMissed
	if count > tooManyMissed {
		m = manyMissed
	}
	if mostRecent.IsZero() {
		return earliest, nil, m, nil
	}
	return earliest, &mostRecent, m, nil
}

// nextScheduleTimeDuration is how long to wait before cj is next due,
// padded by nextScheduleDelta.
func nextScheduleTimeDuration(cj *batchv1.CronJob, now time.Time, sched *cron.Schedule) time.Duration {
	earliest, mostRecent, m, err := mostRecentScheduleTime(cj, now, sched, false)
	switch {
	case err != nil:
		mostRecent = &now
	case mostRecent == nil && m == noneMissed:
		mostRecent = &earliest
	case mostRecent == nil:
		mostRecent = &now
	}
	return sched.Next(*mostRecent).Add(nextScheduleDelta).Sub(now)
}

// getJobName names the Job of a scheduled time after the minute it is
// in, so that one time never makes two Jobs. The name has at most 11
// characters more than the CronJob's, which validation leaves room for.
func getJobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// jobFromTemplate makes the Job of cj for a scheduled time: the template's
// labels, annotations and spec, cj as its controller, and the scheduled
// time in cj's time zone (UTC without one, as Kubernetes) as an annotation.
func jobFromTemplate(cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	loc, err := time.LoadLocation(ptr.Deref(cj.Spec.TimeZone, ""))
	if err != nil {
		return nil, fmt.Errorf("time zone of cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	labels := maps.Clone(cj.Spec.JobTemplate.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	annotations := maps.Clone(cj.Spec.JobTemplate.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            getJobName(cj, scheduled),
			Namespace:       cj.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
	}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job, nil
}
