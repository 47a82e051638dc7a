package cronjob

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// TestSync runs one sync of tick at a given time over given Jobs and checks
// what it did: Jobs created and deleted, status, events, and when it asks
// to run again.
func TestSync(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	running := newJob(nameAt(t0), t0)
	succeeded := newJob(nameAt(t0), t0, finishedAt(batchv1.JobComplete, t0.Add(20*time.Second)))
	failed := newJob(nameAt(t0), t0, finishedAt(batchv1.JobFailed, t0.Add(20*time.Second)))
	manual := newJob("tick-manual", t0.Add(30*time.Second), func(j *batchv1.Job) {
		j.Annotations = map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	})
	history := func(cond batchv1.JobConditionType, n int) []runtime.Object {
		var out []runtime.Object
		for i := range n {
			at := t0.Add(-time.Duration(n-i) * time.Hour)
			out = append(out, newJob(strings.ToLower(string(cond))+"-"+string(rune('a'+i)), at, finishedAt(cond, at.Add(time.Minute))))
		}
		return out
	}
	nextDelta := 100 * time.Millisecond

	tests := []struct {
		name string
		cj   *batchv1.CronJob
		jobs []runtime.Object
		now  time.Time

		wantCreated, wantDeleted []string
		wantActive               []string
		wantLastSchedule         *time.Time
		wantLastSuccess          *time.Time
		wantEvents               []string
		wantRequeue              *time.Duration // when the sync asks to run again, from now
		wantAnnotation           string         // of the Job created
	}{
		{
			name:             "every minute: the first time after creation",
			cj:               newCronJob("*/1 * * * *", func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(t0.Add(-50 * time.Second)) }),
			now:              t0.Add(5 * time.Second),
			wantCreated:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(55*time.Second + nextDelta),
			wantAnnotation:   "2025-01-01T10:00:00Z",
		},
		{
			name:        "every minute: not due yet",
			cj:          newCronJob("* * * * *", func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(t0.Add(10 * time.Second)) }),
			now:         t0.Add(50 * time.Second),
			wantRequeue: ptr.To(10*time.Second + nextDelta),
		},
		{
			name:             "missed times: only the most recent starts",
			cj:               newCronJob("* * * * *", withLastSchedule(t0)),
			now:              t0.Add(5*time.Minute + 3*time.Second),
			wantCreated:      []string{nameAt(t0.Add(5 * time.Minute))},
			wantActive:       []string{nameAt(t0.Add(5 * time.Minute))},
			wantLastSchedule: ptr.To(t0.Add(5 * time.Minute)),
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(57*time.Second + nextDelta),
		},
		{
			name:             "more than 100 missed times warn, and the most recent starts",
			cj:               newCronJob("* * * * *", func(cj *batchv1.CronJob) { cj.CreationTimestamp = metav1.NewTime(t0.Add(-3 * time.Hour)) }),
			now:              t0.Add(30 * time.Second),
			wantCreated:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonTooManyMissedTimes, reasonSuccessfulCreate},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name: "100 missed times do not warn",
			cj: newCronJob("* * * * *", func(cj *batchv1.CronJob) {
				cj.CreationTimestamp = metav1.NewTime(t0.Add(-100*time.Minute + time.Second))
			}),
			now:              t0.Add(30 * time.Second),
			wantCreated:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name: "startingDeadlineSeconds: times older than the deadline are skipped",
			cj: newCronJob("* * * * *", withLastSchedule(t0.Add(-time.Hour)), func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = ptr.To(int64(10))
			}),
			now:              t0.Add(30 * time.Second),
			wantLastSchedule: ptr.To(t0.Add(-time.Hour)),
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name: "startingDeadlineSeconds: the most recent time within the deadline starts",
			cj: newCronJob("* * * * *", withLastSchedule(t0.Add(-time.Hour)), func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = ptr.To(int64(60))
			}),
			now:              t0.Add(30 * time.Second),
			wantCreated:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name: "startingDeadlineSeconds: more than 100 times missed within the deadline",
			cj: newCronJob("* * * * *", withLastSchedule(t0.Add(-3*time.Hour)), func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = ptr.To(int64(2 * 3600))
			}),
			now:              t0.Add(30 * time.Second),
			wantCreated:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonTooManyMissedTimes, reasonSuccessfulCreate},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name:             "suspended: nothing starts and nothing is queued",
			cj:               newCronJob("* * * * *", withLastSchedule(t0), func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) }),
			now:              t0.Add(5 * time.Minute),
			wantLastSchedule: &t0,
		},
		{
			name:             "Allow: a second Job beside the active one",
			cj:               newCronJob("* * * * *", withLastSchedule(t0), withActive(running)),
			jobs:             []runtime.Object{running},
			now:              t0.Add(time.Minute + time.Second),
			wantCreated:      []string{nameAt(t0.Add(time.Minute))},
			wantActive:       []string{nameAt(t0), nameAt(t0.Add(time.Minute))},
			wantLastSchedule: ptr.To(t0.Add(time.Minute)),
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(59*time.Second + nextDelta),
		},
		{
			name: "Forbid: nothing starts while a Job is active",
			cj: newCronJob("* * * * *", withLastSchedule(t0), withActive(running), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			}),
			jobs:             []runtime.Object{running},
			now:              t0.Add(time.Minute + time.Second),
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonJobAlreadyActive},
			wantRequeue:      ptr.To(59*time.Second + nextDelta),
		},
		{
			name: "Forbid: the time held back starts when the active Job finishes",
			cj: newCronJob("* * * * *", withLastSchedule(t0), withActive(succeeded), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			}),
			jobs:             []runtime.Object{succeeded},
			now:              t0.Add(time.Minute + 40*time.Second),
			wantCreated:      []string{nameAt(t0.Add(time.Minute))},
			wantActive:       []string{nameAt(t0.Add(time.Minute))},
			wantLastSchedule: ptr.To(t0.Add(time.Minute)),
			wantLastSuccess:  ptr.To(t0.Add(20 * time.Second)),
			wantEvents:       []string{reasonSawCompletedJob, reasonSuccessfulCreate},
			wantRequeue:      ptr.To(20*time.Second + nextDelta),
		},
		{
			name: "Replace: the active Job is deleted and a new one starts",
			cj: newCronJob("* * * * *", withLastSchedule(t0), withActive(running), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
			}),
			jobs:             []runtime.Object{running},
			now:              t0.Add(time.Minute + time.Second),
			wantCreated:      []string{nameAt(t0.Add(time.Minute))},
			wantDeleted:      []string{nameAt(t0)},
			wantActive:       []string{nameAt(t0.Add(time.Minute))},
			wantLastSchedule: ptr.To(t0.Add(time.Minute)),
			wantEvents:       []string{reasonSuccessfulDelete, reasonSuccessfulCreate},
			wantRequeue:      ptr.To(59*time.Second + nextDelta),
		},
		{
			name:             "a finished active Job leaves the active list; a success sets lastSuccessfulTime",
			cj:               newCronJob("* * * * *", withLastSchedule(t0), withActive(succeeded)),
			jobs:             []runtime.Object{succeeded},
			now:              t0.Add(30 * time.Second),
			wantLastSchedule: &t0,
			wantLastSuccess:  ptr.To(t0.Add(20 * time.Second)),
			wantEvents:       []string{reasonSawCompletedJob},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name:             "a failed Job leaves lastSuccessfulTime alone",
			cj:               newCronJob("* * * * *", withLastSchedule(t0), withActive(failed)),
			jobs:             []runtime.Object{failed},
			now:              t0.Add(30 * time.Second),
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonSawCompletedJob},
			wantRequeue:      ptr.To(30*time.Second + nextDelta),
		},
		{
			name: "lastSuccessfulTime is the latest completion, active or not",
			cj:   newCronJob("@hourly", withLastSchedule(t0)),
			jobs: []runtime.Object{
				newJob("tick-a", t0.Add(-3*time.Hour), finishedAt(batchv1.JobComplete, t0.Add(-2*time.Hour))),
				newJob("tick-b", t0.Add(-2*time.Hour), finishedAt(batchv1.JobComplete, t0.Add(-time.Hour))),
			},
			now:              t0.Add(30 * time.Minute),
			wantLastSchedule: &t0,
			wantLastSuccess:  ptr.To(t0.Add(-time.Hour)),
			wantRequeue:      ptr.To(30*time.Minute + nextDelta),
		},
		{
			name: "history limits delete the oldest finished Jobs in the background",
			cj:   newCronJob("@hourly", withLastSchedule(t0), withActive(running)),
			jobs: append(append([]runtime.Object{running}, history(batchv1.JobComplete, 5)...), history(batchv1.JobFailed, 3)...),
			now:  t0.Add(30 * time.Minute),
			// Limits of 3 successful and 1 failed.
			wantDeleted:      []string{"complete-a", "complete-b", "failed-a", "failed-b"},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantLastSuccess:  ptr.To(t0.Add(-time.Hour + time.Minute)),
			wantEvents:       []string{reasonSuccessfulDelete, reasonSuccessfulDelete, reasonSuccessfulDelete, reasonSuccessfulDelete},
			wantRequeue:      ptr.To(30*time.Minute + nextDelta),
		},
		{
			name: "history limits of 0 keep no finished Job, and unfinished ones",
			cj: newCronJob("@hourly", withLastSchedule(t0), withActive(running), func(cj *batchv1.CronJob) {
				cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = ptr.To(int32(0)), ptr.To(int32(0))
			}),
			jobs:             append(append([]runtime.Object{running}, history(batchv1.JobComplete, 1)...), history(batchv1.JobFailed, 1)...),
			now:              t0.Add(30 * time.Minute),
			wantDeleted:      []string{"complete-a", "failed-a"},
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantLastSuccess:  ptr.To(t0.Add(-time.Hour + time.Minute)),
			wantEvents:       []string{reasonSuccessfulDelete, reasonSuccessfulDelete},
			wantRequeue:      ptr.To(30*time.Minute + nextDelta),
		},
		{
			name:             "a Job the controller did not create (kubectl create job --from) is unexpected",
			cj:               newCronJob("@hourly", withLastSchedule(t0)),
			jobs:             []runtime.Object{manual},
			now:              t0.Add(time.Minute),
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonUnexpectedJob},
			wantRequeue:      ptr.To(59*time.Minute + nextDelta),
		},
		{
			name:             "an active Job gone missing leaves the active list",
			cj:               newCronJob("@hourly", withLastSchedule(t0), withActive(running)),
			now:              t0.Add(time.Minute),
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonMissingJob},
			wantRequeue:      ptr.To(59*time.Minute + nextDelta),
		},
		{
			name:             "a Job created before a lost status write is recorded, not created again",
			cj:               newCronJob("* * * * *", withLastSchedule(t0.Add(-time.Minute))),
			jobs:             []runtime.Object{running},
			now:              t0.Add(time.Second),
			wantCreated:      []string{nameAt(t0)}, // tried, AlreadyExists
			wantActive:       []string{nameAt(t0)},
			wantLastSchedule: &t0,
			wantEvents:       []string{reasonUnexpectedJob},
			wantRequeue:      ptr.To(59*time.Second + nextDelta),
		},
		{
			name: "a Job of the same name the CronJob does not control is left alone",
			cj:   newCronJob("* * * * *", withLastSchedule(t0.Add(-time.Minute))),
			jobs: []runtime.Object{newJob(nameAt(t0), t0, func(j *batchv1.Job) { j.OwnerReferences = nil })},
			now:  t0.Add(time.Second),
			// Nothing to record; it comes back for the next time.
			wantCreated:      []string{nameAt(t0)},
			wantLastSchedule: ptr.To(t0.Add(-time.Minute)),
			wantRequeue:      ptr.To(59*time.Second + nextDelta),
		},
		{
			name: "time zone: daily at 9 in New York",
			cj: newCronJob("0 9 * * *", func(cj *batchv1.CronJob) {
				cj.Spec.TimeZone = ptr.To("America/New_York")
				cj.CreationTimestamp = metav1.NewTime(time.Date(2025, 1, 1, 8, 0, 0, 0, ny))
			}),
			now:              time.Date(2025, 1, 1, 14, 0, 30, 0, time.UTC),
			wantCreated:      []string{nameAt(time.Date(2025, 1, 1, 14, 0, 0, 0, time.UTC))},
			wantActive:       []string{nameAt(time.Date(2025, 1, 1, 14, 0, 0, 0, time.UTC))},
			wantLastSchedule: ptr.To(time.Date(2025, 1, 1, 14, 0, 0, 0, time.UTC)),
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(24*time.Hour - 30*time.Second + nextDelta),
			wantAnnotation:   "2025-01-01T09:00:00-05:00",
		},
		{
			name: "time zone: 9 in New York the day clocks spring forward is 13:00 UTC",
			cj: newCronJob("0 9 * * *", withLastSchedule(time.Date(2025, 3, 8, 14, 0, 0, 0, time.UTC)), func(cj *batchv1.CronJob) {
				cj.Spec.TimeZone = ptr.To("America/New_York")
			}),
			now:              time.Date(2025, 3, 9, 13, 0, 30, 0, time.UTC),
			wantCreated:      []string{nameAt(time.Date(2025, 3, 9, 13, 0, 0, 0, time.UTC))},
			wantActive:       []string{nameAt(time.Date(2025, 3, 9, 13, 0, 0, 0, time.UTC))},
			wantLastSchedule: ptr.To(time.Date(2025, 3, 9, 13, 0, 0, 0, time.UTC)),
			wantEvents:       []string{reasonSuccessfulCreate},
			wantRequeue:      ptr.To(24*time.Hour - 30*time.Second + nextDelta),
			wantAnnotation:   "2025-03-09T09:00:00-04:00",
		},
		{
			name: "time zone: a time the spring-forward skips waits for the next day",
			cj: newCronJob("30 2 * * *", withLastSchedule(time.Date(2025, 3, 8, 7, 30, 0, 0, time.UTC)), func(cj *batchv1.CronJob) {
				cj.Spec.TimeZone = ptr.To("America/New_York")
			}),
			now:              time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC),
			wantLastSchedule: ptr.To(time.Date(2025, 3, 8, 7, 30, 0, 0, time.UTC)),
			// 02:30 EDT on the 10th.
			wantRequeue: ptr.To(18*time.Hour + 30*time.Minute + nextDelta),
		},
		{
			name:             "a CronJob being deleted starts nothing",
			cj:               newCronJob("* * * * *", withLastSchedule(t0), func(cj *batchv1.CronJob) { cj.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }),
			now:              t0.Add(5 * time.Minute),
			wantLastSchedule: &t0,
		},
		{
			name:       "a schedule that never fires is invalid",
			cj:         newCronJob("0 0 30 2 *"),
			now:        t0.Add(time.Hour),
			wantEvents: []string{reasonInvalidSchedule},
		},
		{
			name:       "an unknown time zone",
			cj:         newCronJob("* * * * *", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus") }),
			now:        t0.Add(time.Hour),
			wantEvents: []string{reasonUnknownTimeZone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEnv(t, tt.now, append([]runtime.Object{tt.cj}, tt.jobs...)...)
			after, err := e.c.syncKey(e.ctx, ns+"/tick")
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if diff := cmp.Diff(tt.wantRequeue, after); diff != "" {
				t.Errorf("requeue after (-want +got):\n%s", diff)
			}
			created, deleted, background := e.jobActions()
			if diff := cmp.Diff(tt.wantCreated, created); diff != "" {
				t.Errorf("jobs created (-want +got):\n%s", diff)
			}
			slices.Sort(deleted)
			if diff := cmp.Diff(tt.wantDeleted, deleted); diff != "" {
				t.Errorf("jobs deleted (-want +got):\n%s", diff)
			}
			if !background {
				t.Errorf("a deletion did not propagate in the background")
			}
			if diff := cmp.Diff(tt.wantEvents, e.eventReasons()); diff != "" {
				t.Errorf("events (-want +got):\n%s\n%v", diff, e.rec.Events())
			}
			got := e.getCronJob()
			var active []string
			for _, r := range got.Status.Active {
				active = append(active, r.Name)
				if r.Kind != "Job" || r.APIVersion != "batch/v1" || r.Namespace != ns || r.UID == "" {
					t.Errorf("active reference %+v", r)
				}
			}
			if diff := cmp.Diff(tt.wantActive, active); diff != "" {
				t.Errorf("status.active (-want +got):\n%s", diff)
			}
			checkTime(t, "lastScheduleTime", tt.wantLastSchedule, got.Status.LastScheduleTime)
			checkTime(t, "lastSuccessfulTime", tt.wantLastSuccess, got.Status.LastSuccessfulTime)
			if tt.wantAnnotation != "" {
				j := e.getJob(tt.wantCreated[0])
				if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != tt.wantAnnotation {
					t.Errorf("scheduled-timestamp annotation = %q, want %q", got, tt.wantAnnotation)
				}
			}
			// One status write at most, and none when nothing changed.
			changed := !cmp.Equal(tt.cj.Status, got.Status)
			if w := e.statusWrites(); w > 1 || (w == 1) != changed {
				t.Errorf("%d status writes, status changed: %v", w, changed)
			}
		})
	}
}

func checkTime(t *testing.T, what string, want *time.Time, got *metav1.Time) {
	t.Helper()
	switch {
	case want == nil && got == nil:
	case want == nil || got == nil:
		t.Errorf("%s = %v, want %v", what, got, want)
	case !got.Time.Equal(*want):
		t.Errorf("%s = %v, want %v", what, got.Time, *want)
	}
}

// TestSyncMessages checks the events' wording where Kubernetes' is worth
// keeping: kubectl describe shows it.
func TestSyncMessages(t *testing.T) {
	done := newJob(nameAt(t0), t0, finishedAt(batchv1.JobFailed, t0.Add(time.Second)))
	e, _ := newEnv(t, t0.Add(time.Minute+time.Second), newCronJob("* * * * *", withLastSchedule(t0), withActive(done)), done)
	if _, err := e.c.syncKey(e.ctx, ns+"/tick"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Saw completed job: " + nameAt(t0) + ", condition: Failed",
		"Created job " + nameAt(t0.Add(time.Minute)),
	}
	var got []string
	for _, ev := range e.rec.Events() {
		got = append(got, ev.Message)
		if ev.Object != ns+"/tick" {
			t.Errorf("event about %s, want %s/tick", ev.Object, ns)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event messages (-want +got):\n%s", diff)
	}
}

// TestSyncIgnoresOtherOwners: only Jobs controlled by this CronJob (its
// uid, not only its name) count.
func TestSyncIgnoresOtherOwners(t *testing.T) {
	other := newJob("tick-old", t0, func(j *batchv1.Job) { j.OwnerReferences[0].UID = "old-uid" })
	orphan := newJob("tick-orphan", t0, func(j *batchv1.Job) { j.OwnerReferences = nil })
	e, _ := newEnv(t, t0.Add(30*time.Second), newCronJob("@hourly", withLastSchedule(t0)), other, orphan)
	if _, err := e.c.syncKey(e.ctx, ns+"/tick"); err != nil {
		t.Fatal(err)
	}
	if ev := e.eventReasons(); len(ev) != 0 {
		t.Errorf("events %v, want none", ev)
	}
}
