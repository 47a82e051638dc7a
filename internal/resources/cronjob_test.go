package resources

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newCronJob() *batchv1.CronJob {
	t := newTemplate()
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: t}},
		},
	}
}

func TestCronJobDefaults(t *testing.T) {
	got := newCronJob()
	CronJobs().Default(got)
	want := newCronJob()
	want.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	want.Spec.Suspend = ptrTo(false)
	want.Spec.SuccessfulJobsHistoryLimit, want.Spec.FailedJobsHistoryLimit = ptrTo(int32(3)), ptrTo(int32(1))
	want.Spec.JobTemplate.Spec.Template = defaultedTemplate()
	want.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted cronjob (-want +got):\n%s", diff)
	}
}

func TestCronJobValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("America/New_York") }},
		{name: "descriptor", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "@daily" }},
		{name: "name too long", mutate: func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }, want: []wantErr{invalid("metadata.name")}},
		{name: "no schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, want: []wantErr{required("spec.schedule")}},
		{name: "bad schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "every minute" }, want: []wantErr{invalid("spec.schedule")}},
		{name: "TZ in schedule", mutate: func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }, want: []wantErr{invalid("spec.schedule")}},
		{name: "unknown time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Mars/Olympus") }, want: []wantErr{invalid("spec.timeZone")}},
		{name: "Local time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Local") }, want: []wantErr{invalid("spec.timeZone")}},
		{name: "empty time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("") }, want: []wantErr{invalid("spec.timeZone")}},
		{name: "path as time zone", mutate: func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("../etc/passwd") }, want: []wantErr{invalid("spec.timeZone")}},
		{name: "concurrency policy", mutate: func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }, want: []wantErr{notSupported("spec.concurrencyPolicy")}},
		{name: "negative deadline", mutate: func(c *batchv1.CronJob) { c.Spec.StartingDeadlineSeconds = ptrTo(int64(-1)) },
			want: []wantErr{invalid("spec.startingDeadlineSeconds")}},
		{name: "negative history", mutate: func(c *batchv1.CronJob) { c.Spec.FailedJobsHistoryLimit = ptrTo(int32(-1)) },
			want: []wantErr{invalid("spec.failedJobsHistoryLimit")}},
		{name: "template restartPolicy", mutate: func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		},
			want: []wantErr{required("spec.jobTemplate.spec.template.spec.restartPolicy")}},
		{name: "template selector", mutate: func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}, want: []wantErr{invalid("spec.jobTemplate.spec.selector")}},
		{name: "template manual selector", mutate: func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.ManualSelector = ptrTo(true) },
			want: []wantErr{notSupported("spec.jobTemplate.spec.manualSelector")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCronJob()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			r := CronJobs()
			r.Default(c)
			checkErrs(t, r.Validate(c), tt.want...)
		})
	}
}

func TestCronJobRow(t *testing.T) {
	c := newCronJob()
	CronJobs().Default(c)
	c.CreationTimestamp = ago(time.Hour)
	last := ago(4 * time.Minute)
	c.Status = batchv1.CronJobStatus{LastScheduleTime: &last, Active: []corev1.ObjectReference{{Name: "backup-1"}}}
	want := []any{"backup", "*/5 * * * *", "<none>", "False", int64(1), "4m", "60m", "nginx", "nginx:1.27", "<none>"}
	if diff := cmp.Diff(want, cronJobRow(c, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
