package cronjob

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/cron"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestMostRecentScheduleTime(t *testing.T) {
	tests := []struct {
		name            string
		schedule        string
		lastSchedule    *time.Time
		deadline        *int64
		includeDeadline bool
		now             time.Time
		wantEarliest    time.Time
		wantMostRecent  *time.Time
		wantMissed      missed
		wantErr         bool
	}{
		{name: "not due", schedule: "0 * * * *", now: t0.Add(59 * time.Minute), wantEarliest: t0},
		{name: "due", schedule: "0 * * * *", now: t0.Add(time.Hour), wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(time.Hour))},
		{name: "due, the next not yet", schedule: "0 * * * *", now: t0.Add(2*time.Hour - time.Second), wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(time.Hour))},
		{
			name: "from the last schedule time", schedule: "0 * * * *", lastSchedule: ptr.To(t0.Add(time.Hour)),
			now: t0.Add(90 * time.Minute), wantEarliest: t0.Add(time.Hour),
		},
		{name: "a few missed", schedule: "0 * * * *", now: t0.Add(5*time.Hour + 30*time.Minute), wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(5 * time.Hour)), wantMissed: fewMissed},
		{name: "many missed", schedule: "* * * * *", now: t0.Add(101 * time.Minute), wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(101 * time.Minute)), wantMissed: manyMissed},
		{
			name: "uneven schedule", schedule: "30 6-16/4 * * 1-5", now: time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC),
			wantEarliest: t0, wantMostRecent: ptr.To(time.Date(2025, 1, 6, 6, 30, 0, 0, time.UTC)), wantMissed: fewMissed,
		},
		{
			name: "every 90 seconds", schedule: "@every 90s", now: t0.Add(10 * time.Minute),
			wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(9 * time.Minute)), wantMissed: fewMissed,
		},
		{
			name: "deadline moves the earliest time up", schedule: "* * * * *", deadline: ptr.To(int64(150)), includeDeadline: true,
			now: t0.Add(time.Hour + 30*time.Second), wantEarliest: t0.Add(58 * time.Minute), wantMostRecent: ptr.To(t0.Add(time.Hour)), wantMissed: fewMissed,
		},
		{
			name: "deadline ignored when not asked", schedule: "* * * * *", deadline: ptr.To(int64(150)),
			now: t0.Add(time.Hour + 30*time.Second), wantEarliest: t0, wantMostRecent: ptr.To(t0.Add(time.Hour)), wantMissed: fewMissed,
		},
		{name: "never fires", schedule: "0 0 30 2 *", now: t0.Add(time.Hour), wantEarliest: t0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := cron.Parse(tt.schedule)
			if err != nil {
				t.Fatal(err)
			}
			cj := newCronJob(tt.schedule)
			if tt.lastSchedule != nil {
				withLastSchedule(*tt.lastSchedule)(cj)
			}
			cj.Spec.StartingDeadlineSeconds = tt.deadline
			earliest, mostRecent, m, err := mostRecentScheduleTime(cj, tt.now, sched, tt.includeDeadline)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !earliest.Equal(tt.wantEarliest) {
				t.Errorf("earliest = %v, want %v", earliest, tt.wantEarliest)
			}
			if diff := cmp.Diff(tt.wantMostRecent, mostRecent); diff != "" {
				t.Errorf("most recent (-want +got):\n%s", diff)
			}
			if m != tt.wantMissed {
				t.Errorf("missed = %v, want %v", m, tt.wantMissed)
			}
		})
	}
}

func TestNextScheduleTimeDuration(t *testing.T) {
	tests := []struct {
		name         string
		schedule     string
		lastSchedule *time.Time
		now          time.Time
		want         time.Duration
	}{
		{"before the first time", "*/5 * * * *", nil, t0.Add(time.Minute), 4*time.Minute + nextScheduleDelta},
		{"just processed", "*/5 * * * *", ptr.To(t0.Add(5 * time.Minute)), t0.Add(5*time.Minute + time.Second), 5*time.Minute - time.Second + nextScheduleDelta},
		{"a time due but not processed: the one after", "*/5 * * * *", nil, t0.Add(6 * time.Minute), 4*time.Minute + nextScheduleDelta},
		{"many missed: the next from now", "* * * * *", nil, t0.Add(3*time.Hour + 20*time.Second), 40*time.Second + nextScheduleDelta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := cron.Parse(tt.schedule)
			if err != nil {
				t.Fatal(err)
			}
			cj := newCronJob(tt.schedule)
			if tt.lastSchedule != nil {
				withLastSchedule(*tt.lastSchedule)(cj)
			}
			if got := nextScheduleTimeDuration(cj, tt.now, sched); got != tt.want {
				t.Errorf("nextScheduleTimeDuration = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseScheduleTimeZone(t *testing.T) {
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		schedule string
		timeZone *string
		want     time.Time
	}{
		{"no time zone: the time's own", "0 9 * * *", nil, time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)},
		{"spec.timeZone", "0 9 * * *", ptr.To("Asia/Tokyo"), time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)},
		{"TZ in the schedule wins", "TZ=Europe/Paris 0 9 * * *", ptr.To("Asia/Tokyo"), time.Date(2025, 6, 1, 7, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := newCronJob(tt.schedule, func(cj *batchv1.CronJob) { cj.Spec.TimeZone = tt.timeZone })
			s, err := parseSchedule(cj, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(at); !got.Equal(tt.want) {
				t.Errorf("Next = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJobFromTemplate(t *testing.T) {
	scheduled := time.Date(2025, 7, 1, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		name           string
		timeZone       *string
		wantAnnotation string
	}{
		{"UTC without a time zone", nil, "2025-07-01T12:30:00Z"},
		{"in the CronJob's time zone", ptr.To("Europe/Paris"), "2025-07-01T14:30:00+02:00"},
		{"half-hour zone", ptr.To("Asia/Kolkata"), "2025-07-01T18:00:00+05:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := newCronJob("30 * * * *", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = tt.timeZone })
			job, err := jobFromTemplate(cj, scheduled)
			if err != nil {
				t.Fatal(err)
			}
			want := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{
					// 2025-07-01T12:30Z is 29,189,550 minutes after the epoch.
					Name:      "tick-29189550",
					Namespace: ns,
					Labels:    map[string]string{"app": "tick"},
					Annotations: map[string]string{
						"note": "x",
						"batch.kubernetes.io/cronjob-scheduled-timestamp": tt.wantAnnotation,
					},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "batch/v1", Kind: "CronJob", Name: "tick", UID: "cj-uid",
						Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
					}},
				},
				Spec: cj.Spec.JobTemplate.Spec,
			}
			if diff := cmp.Diff(want, job); diff != "" {
				t.Errorf("job (-want +got):\n%s", diff)
			}
			// The Job is a copy: changing it leaves the CronJob alone.
			job.Spec.Template.Spec.Containers[0].Image = "changed"
			job.Labels["app"] = "changed"
			if cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image != "busybox" || cj.Spec.JobTemplate.Labels["app"] != "tick" {
				t.Error("the job shares the template's memory")
			}
		})
	}
}

// TestJobName: at most 11 characters beyond the CronJob's 52 (a Job's name
// is a 63-character label), as long as the minutes fit in 10 digits.
func TestJobName(t *testing.T) {
	cj := newCronJob("* * * * *", func(cj *batchv1.CronJob) { cj.Name = "a234567890123456789012345678901234567890123456789012" })
	name := getJobName(cj, time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC))
	if len(name) != 63 {
		t.Errorf("job name %q has %d characters, want 63", name, len(name))
	}
	if got := getJobName(newCronJob("* * * * *"), time.Unix(60*123, 59)); got != "tick-123" {
		t.Errorf("job name = %q, want tick-123", got)
	}
}

func TestByStartTime(t *testing.T) {
	job := func(name string, start *time.Time) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if start != nil {
			j.Status.StartTime = ptr.To(metav1.NewTime(*start))
		}
		return j
	}
	jobs := []*batchv1.Job{
		job("z-unstarted", nil), job("b-late", ptr.To(t0.Add(time.Hour))), job("a-unstarted", nil),
		job("d-early", ptr.To(t0)), job("c-early", ptr.To(t0)),
	}
	want := []string{"c-early", "d-early", "b-late", "a-unstarted", "z-unstarted"}
	slices.SortFunc(jobs, byStartTime)
	var got []string
	for _, j := range jobs {
		got = append(got, j.Name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
