package cronjob

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

// TestController runs the controller's workers on a fake clock: the test
// waits until the controller has asked to be woken at a time, moves the
// clock there, and sees what the controller did. The time it asks for is
// the next scheduled time plus nextScheduleDelta, which proves the requeue
// is a delayed add at the right time, not a poll.
func TestController(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name  string
		start time.Time
		run   func(t *testing.T, e *env)
	}{
		{name: "every minute, finished Jobs beyond the history limit deleted", start: t0.Add(30 * time.Second), run: func(t *testing.T, e *env) {
			cj := newCronJob("*/1 * * * *", func(cj *batchv1.CronJob) {
				cj.UID, cj.ResourceVersion, cj.CreationTimestamp = "", "", metav1.Time{}
				cj.Spec.SuccessfulJobsHistoryLimit = ptr.To(int32(2))
			})
			created, err := e.cs.BatchV1().CronJobs(ns).Create(e.ctx, cj, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 4; i++ {
				at := t0.Add(time.Duration(i) * time.Minute)
				e.stepTo(at.Add(nextScheduleDelta))
				name := nameAt(at)
				testwait.For(t, "job "+name+" active", func() (bool, string) {
					s := e.getCronJob().Status
					return len(s.Active) == 1 && s.Active[0].Name == name && s.LastScheduleTime.Equal(ptr.To(metav1.NewTime(at))), fmt.Sprint(s)
				})
				job := e.getJob(name)
				if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != created.UID {
					t.Errorf("job %s controller %v, want the cronjob %s", name, ref, created.UID)
				}
				want := at.Format(time.RFC3339)
				if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != want {
					t.Errorf("job %s scheduled at %q, want %q", name, got, want)
				}
				e.clock.Step(20 * time.Second)
				e.finishJob(name, batchv1.JobComplete)
				completed := e.clock.Now()
				testwait.For(t, "job "+name+" seen completed", func() (bool, string) {
					s := e.getCronJob().Status
					return len(s.Active) == 0 && s.LastSuccessfulTime.Equal(ptr.To(metav1.NewTime(completed))), fmt.Sprint(s)
				})
			}
			// Four Jobs succeeded; the two oldest are deleted.
			testwait.For(t, "two jobs kept", func() (bool, string) {
				names := e.jobNames()
				return cmp.Equal(names, []string{nameAt(t0.Add(3 * time.Minute)), nameAt(t0.Add(4 * time.Minute))}), fmt.Sprint(names)
			})
			if n := len(e.events(reasonSuccessfulCreate)); n != 4 {
				t.Errorf("%d SuccessfulCreate events, want 4", n)
			}
			// A sync on a cache a status write behind may see a completion
			// twice (then fails its own status write and retries): count
			// Jobs, not events.
			seen := map[string]bool{}
			for _, ev := range e.events(reasonSawCompletedJob) {
				seen[ev.Message] = true
			}
			if len(seen) != 4 {
				t.Errorf("SawCompletedJob for %d jobs, want 4: %v", len(seen), seen)
			}
			if n := len(e.events(reasonSuccessfulDelete)); n != 2 {
				t.Errorf("%d SuccessfulDelete events, want 2", n)
			}
		}},
		{name: "daily at 9 in New York across the spring forward", start: time.Date(2025, 3, 8, 8, 0, 0, 0, ny), run: func(t *testing.T, e *env) {
			cj := newCronJob("0 9 * * *", func(cj *batchv1.CronJob) {
				cj.UID, cj.ResourceVersion, cj.CreationTimestamp = "", "", metav1.Time{}
				cj.Spec.TimeZone = ptr.To("America/New_York")
			})
			if _, err := e.cs.BatchV1().CronJobs(ns).Create(e.ctx, cj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"2025-03-08T09:00:00-05:00", "2025-03-09T09:00:00-04:00", "2025-03-10T09:00:00-04:00"} {
				at, _ := time.Parse(time.RFC3339, want)
				e.stepTo(at.Add(nextScheduleDelta))
				testwait.For(t, "job at "+want, func() (bool, string) {
					s := e.getCronJob().Status
					return s.LastScheduleTime.Equal(ptr.To(metav1.NewTime(at))), fmt.Sprint(s)
				})
				if got := e.getJob(nameAt(at)).Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != want {
					t.Errorf("scheduled-timestamp annotation = %q, want %q", got, want)
				}
			}
			// 23 hours between the first two (the clock lost one), 24 after.
			if len(e.jobNames()) != 3 {
				t.Errorf("jobs %v, want 3", e.jobNames())
			}
		}},
		{name: "a new schedule is queued for its own next time", start: t0.Add(30 * time.Second), run: func(t *testing.T, e *env) {
			cj := newCronJob("0 * * * *", func(cj *batchv1.CronJob) {
				cj.UID, cj.ResourceVersion, cj.CreationTimestamp = "", "", metav1.Time{}
			})
			if _, err := e.cs.BatchV1().CronJobs(ns).Create(e.ctx, cj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.waitDue(t0.Add(time.Hour + nextScheduleDelta))
			cj = e.getCronJob()
			cj.Spec.Schedule = "*/5 * * * *"
			if _, err := e.cs.BatchV1().CronJobs(ns).Update(e.ctx, cj, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.stepTo(t0.Add(5*time.Minute + nextScheduleDelta))
			testwait.For(t, "the job of 10:05", func() (bool, string) {
				names := e.jobNames()
				return cmp.Equal(names, []string{nameAt(t0.Add(5 * time.Minute))}), fmt.Sprint(names)
			})
		}},
		{name: "Forbid starts the held-back time when the active Job finishes", start: t0.Add(30 * time.Second), run: func(t *testing.T, e *env) {
			cj := newCronJob("* * * * *", func(cj *batchv1.CronJob) {
				cj.UID, cj.ResourceVersion, cj.CreationTimestamp = "", "", metav1.Time{}
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			})
			if _, err := e.cs.BatchV1().CronJobs(ns).Create(e.ctx, cj, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.stepTo(t0.Add(time.Minute + nextScheduleDelta))
			testwait.For(t, "the first job", func() (bool, string) { return len(e.jobNames()) == 1, fmt.Sprint(e.jobNames()) })
			e.stepTo(t0.Add(2*time.Minute + nextScheduleDelta))
			testwait.For(t, "JobAlreadyActive", func() (bool, string) {
				return len(e.events(reasonJobAlreadyActive)) > 0, fmt.Sprint(e.eventReasons())
			})
			e.clock.Step(10 * time.Second)
			e.finishJob(nameAt(t0.Add(time.Minute)), batchv1.JobFailed)
			testwait.For(t, "the held-back job", func() (bool, string) {
				names := e.jobNames()
				return cmp.Equal(names, []string{nameAt(t0.Add(time.Minute)), nameAt(t0.Add(2 * time.Minute))}), fmt.Sprint(names)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEnv(t, tt.start)
			e.run()
			tt.run(t, e)
		})
	}
}

// waitDue waits until the controller has queued itself for t.
func (e *env) waitDue(t time.Time) {
	e.t.Helper()
	testwait.For(e.t, "a requeue for "+t.String(), func() (bool, string) { return e.queue.dueAt(t), e.queue.String() })
}

// stepTo waits until the controller has queued itself for t and moves the
// clock there.
func (e *env) stepTo(t time.Time) {
	e.t.Helper()
	e.waitDue(t)
	e.clock.SetTime(t)
}
