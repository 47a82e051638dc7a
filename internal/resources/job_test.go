package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const jobUID = types.UID("6b6a3c1e-0000-4000-8000-000000000001")

func newJob() *batchv1.Job {
	t := newTemplate()
	t.Labels = nil
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default"}, Spec: batchv1.JobSpec{Template: t}}
}

// createdJob is newJob as the server stores it: defaulted, uid set, selector generated.
func createdJob(mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := newJob()
	for _, m := range mutate {
		m(j)
	}
	j.UID = jobUID
	r := Jobs()
	r.Default(j)
	r.PrepareForCreate(j)
	return j
}

func TestJobDefaults(t *testing.T) {
	got := createdJob()
	want := newJob()
	want.UID = jobUID
	want.Spec.Completions, want.Spec.Parallelism, want.Spec.BackoffLimit = ptrTo(int32(1)), ptrTo(int32(1)), ptrTo(int32(6))
	want.Spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	want.Spec.Suspend, want.Spec.ManualSelector = ptrTo(false), ptrTo(false)
	want.Spec.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
	want.Spec.Template = defaultedTemplate()
	want.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	want.Spec.Template.Labels = map[string]string{
		"job-name": "pi", "batch.kubernetes.io/job-name": "pi",
		"controller-uid": string(jobUID), "batch.kubernetes.io/controller-uid": string(jobUID),
	}
	want.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": string(jobUID)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created job (-want +got):\n%s", diff)
	}

	// Template labels become the job's when it has none; a parallel job gets no completions.
	j := createdJob(func(j *batchv1.Job) {
		j.Spec.Template.Labels = map[string]string{"app": "pi"}
		j.Spec.Parallelism = ptrTo(int32(3))
	})
	if j.Labels["app"] != "pi" || j.Spec.Completions != nil || *j.Spec.Parallelism != 3 {
		t.Errorf("labels %v completions %v parallelism %v", j.Labels, j.Spec.Completions, *j.Spec.Parallelism)
	}
	// A pod failure policy makes Failed the replacement policy.
	j = createdJob(func(j *batchv1.Job) {
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
		}}}
	})
	if *j.Spec.PodReplacementPolicy != batchv1.Failed || j.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status != corev1.ConditionTrue {
		t.Errorf("pod failure policy defaults: %v %+v", *j.Spec.PodReplacementPolicy, j.Spec.PodFailurePolicy.Rules[0])
	}
	// A manual selector generates nothing.
	j = createdJob(func(j *batchv1.Job) { j.Spec.ManualSelector = ptrTo(true) })
	if j.Spec.Selector != nil || j.Spec.Template.Labels != nil {
		t.Errorf("manual selector: selector %v labels %v", j.Spec.Selector, j.Spec.Template.Labels)
	}
}

func TestJobValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*batchv1.Job)
		after  func(*batchv1.Job) // after creation: what a client changed
		want   []wantErr
	}{
		{name: "minimal"},
		{name: "onFailure", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }},
		{name: "indexed", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = ptrTo(batchv1.IndexedCompletion), ptrTo(int32(5))
		}},
		{name: "bad name", mutate: func(j *batchv1.Job) { j.Name = "Pi" }, want: []wantErr{invalid("metadata.name")}},
		{name: "restartPolicy unset", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" },
			want: []wantErr{required("spec.template.spec.restartPolicy")}},
		{name: "restartPolicy Always", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			want: []wantErr{required("spec.template.spec.restartPolicy")}},
		{name: "negative parallelism", mutate: func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.parallelism")}},
		{name: "negative completions", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.completions")}},
		{name: "negative backoffLimit", mutate: func(j *batchv1.Job) { j.Spec.BackoffLimit = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.backoffLimit")}},
		{name: "negative activeDeadlineSeconds", mutate: func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrTo(int64(-1)) },
			want: []wantErr{invalid("spec.activeDeadlineSeconds")}},
		{name: "negative ttl", mutate: func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptrTo(int32(-1)) },
			want: []wantErr{invalid("spec.ttlSecondsAfterFinished")}},
		{name: "completion mode unknown", mutate: func(j *batchv1.Job) { j.Spec.CompletionMode = ptrTo(batchv1.CompletionMode("Sometimes")) },
			want: []wantErr{notSupported("spec.completionMode")}},
		{name: "indexed without completions", mutate: func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Parallelism = ptrTo(batchv1.IndexedCompletion), ptrTo(int32(2))
		}, want: []wantErr{required("spec.completions")}},
		{name: "backoffLimitPerIndex needs indexed", mutate: func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptrTo(int32(1)) },
			want: []wantErr{invalid("spec.backoffLimitPerIndex")}},
		{name: "indexed pod names too long", mutate: func(j *batchv1.Job) {
			j.Name = "a234567890123456789012345678901234567890123456789012345678901"
			j.Spec.CompletionMode, j.Spec.Completions = ptrTo(batchv1.IndexedCompletion), ptrTo(int32(100))
		}, want: []wantErr{invalid("metadata.name")}},
		{name: "pod replacement unknown", mutate: func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = ptrTo(batchv1.PodReplacementPolicy("Never")) },
			want: []wantErr{notSupported("spec.podReplacementPolicy")}},
		{name: "pod failure policy needs Never", mutate: func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
		}, want: []wantErr{invalid("spec.template.spec.restartPolicy")}},
		{name: "pod failure rule without a condition", mutate: func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: "Explode"}}}
		}, want: []wantErr{notSupported("spec.podFailurePolicy.rules[0].action"), invalid("spec.podFailurePolicy.rules[0]")}},
		{name: "exit code 0 with In", mutate: func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{0}},
			}}}
		}, want: []wantErr{invalid("spec.podFailurePolicy.rules[0].onExitCodes.values[0]")}},
		{name: "manual selector required", mutate: func(j *batchv1.Job) { j.Spec.ManualSelector = ptrTo(true) }, want: []wantErr{required("spec.selector")}},
		{name: "manual selector must match", mutate: func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptrTo(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
		}, want: []wantErr{invalid("spec.template.metadata.labels")}},
		{name: "generated label overridden", mutate: func(j *batchv1.Job) {
			j.Spec.Template.Labels = map[string]string{"batch.kubernetes.io/controller-uid": "other"}
		}, want: []wantErr{invalid("spec.template.metadata.labels[batch.kubernetes.io/controller-uid]")}},
		{name: "selector not generated", mutate: func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "other"}}
		}, want: []wantErr{invalid("spec.selector")}},
		{name: "generated label removed", after: func(j *batchv1.Job) { delete(j.Spec.Template.Labels, "job-name") },
			want: []wantErr{required("spec.template.metadata.labels[job-name]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var muts []func(*batchv1.Job)
			if tt.mutate != nil {
				muts = append(muts, tt.mutate)
			}
			j := createdJob(muts...)
			if tt.after != nil {
				tt.after(j)
			}
			checkErrs(t, Jobs().Validate(j), tt.want...)
		})
	}
}

func TestJobValidateUpdate(t *testing.T) {
	tests := []struct {
		name    string
		suspend bool
		mutate  func(*batchv1.Job)
		want    []wantErr
	}{
		{name: "parallelism and deadline may change", mutate: func(j *batchv1.Job) {
			j.Spec.Parallelism, j.Spec.ActiveDeadlineSeconds = ptrTo(int32(4)), ptrTo(int64(60))
			j.Labels = map[string]string{"tier": "batch"}
		}},
		{name: "image is immutable", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" },
			want: []wantErr{invalid("spec.template")}},
		{name: "node selector is immutable while running", mutate: func(j *batchv1.Job) { j.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} },
			want: []wantErr{invalid("spec.template")}},
		{name: "node selector may change while suspended and never started", suspend: true, mutate: func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}},
		{name: "completions are immutable", mutate: func(j *batchv1.Job) { j.Spec.Completions = ptrTo(int32(3)) }, want: []wantErr{invalid("spec.completions")}},
		{name: "selector is immutable", mutate: func(j *batchv1.Job) { j.Spec.Selector.MatchLabels["x"] = "y" }, want: []wantErr{invalid("spec.selector")}},
		{name: "completion mode is immutable", mutate: func(j *batchv1.Job) { j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion) },
			want: []wantErr{invalid("spec.completionMode")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := createdJob(func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(tt.suspend) })
			j := old.DeepCopy()
			tt.mutate(j)
			checkErrs(t, Jobs().ValidateUpdate(j, old), tt.want...)
		})
	}
	// Status updates keep counters non-negative.
	j := createdJob()
	bad := j.DeepCopy()
	bad.Status.Succeeded = -1
	checkErrs(t, Jobs().ValidateStatus(bad, j), invalid("status.succeeded"))
}

func TestJobRow(t *testing.T) {
	j := createdJob()
	j.CreationTimestamp = ago(2 * time.Minute)
	start, done := ago(90*time.Second), ago(30*time.Second)
	j.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &start, CompletionTime: &done,
		Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	want := []any{"pi", "Complete", "1/1", "60s", "2m", "nginx", "nginx:1.27", "batch.kubernetes.io/controller-uid=" + string(jobUID)}
	if diff := cmp.Diff(want, jobRow(j, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	running := createdJob(func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(3)) })
	running.Status.StartTime = &start
	got := jobRow(running, testNow)
	if diff := cmp.Diff([]any{"Running", "0/1 of 3", "90s"}, got[1:4]); diff != "" {
		t.Errorf("running row (-want +got):\n%s", diff)
	}
	if f := Jobs().SelectableFields(j); f["status.successful"] != "1" || f["metadata.namespace"] != "default" {
		t.Errorf("fields %v", f)
	}
}
