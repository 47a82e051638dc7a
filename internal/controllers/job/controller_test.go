package job

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
)

func TestCompletions(t *testing.T) {
	tests := []struct {
		name                    string
		completions             *int32
		parallelism             int32
		wantSucceeded, wantPods int
		wantMaxRunning          int
	}{
		{name: "one pod", completions: ptr.To[int32](1), parallelism: 1, wantSucceeded: 1, wantPods: 1, wantMaxRunning: 1},
		{name: "5 completions, parallelism 2", completions: ptr.To[int32](5), parallelism: 2, wantSucceeded: 5, wantPods: 5, wantMaxRunning: 2},
		{name: "2 completions, parallelism 4: no more pods than completions left", completions: ptr.To[int32](2), parallelism: 4, wantSucceeded: 2, wantPods: 2, wantMaxRunning: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, fakeapi.Options{}, nil)
			created := e.createJob(newJob("calc", tt.completions, tt.parallelism))
			maxRunning := 0
			for done := 0; done < tt.wantSucceeded; {
				want := min(int(tt.parallelism), tt.wantSucceeded-done)
				names := e.waitRunning("calc", want)
				maxRunning = max(maxRunning, len(names))
				e.markRunning(names[0])
				e.waitJob("calc", "ready 1", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Ready, 0) == 1 })
				e.exit(names[0], 0)
				done++
				e.waitJob("calc", fmt.Sprintf("%d succeeded", done), func(j *batchv1.Job) bool { return j.Status.Succeeded == int32(done) })
			}
			j := e.waitJob("calc", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })

			if maxRunning > tt.wantMaxRunning {
				t.Errorf("%d pods ran at once, want at most %d", maxRunning, tt.wantMaxRunning)
			}
			if got := len(e.pods("calc")); got != tt.wantPods {
				t.Errorf("%d pods created, want %d", got, tt.wantPods)
			}
			wantConds := []string{"SuccessCriteriaMet=True", "Complete=True"}
			if diff := cmp.Diff(wantConds, conditionTypes(j)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			for _, c := range j.Status.Conditions {
				if c.Reason != batchv1.JobReasonCompletionsReached || c.Message != "Reached expected number of succeeded pods" {
					t.Errorf("condition %s: reason %q message %q, want CompletionsReached", c.Type, c.Reason, c.Message)
				}
			}
			s := j.Status
			if s.StartTime == nil || s.CompletionTime == nil || s.CompletionTime.Before(s.StartTime) {
				t.Errorf("startTime %v completionTime %v, want both, in order", s.StartTime, s.CompletionTime)
			}
			if s.Active != 0 || ptr.Deref(s.Ready, -1) != 0 || ptr.Deref(s.Terminating, -1) != 0 || s.Failed != 0 || int(s.Succeeded) != tt.wantSucceeded {
				t.Errorf("final status %s", statusString(j))
			}
			if u := s.UncountedTerminatedPods; u == nil || len(u.Succeeded)+len(u.Failed) != 0 {
				t.Errorf("uncountedTerminatedPods %+v, want empty", u)
			}
			yes := true
			wantRef := []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "calc", UID: created.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
			for _, p := range e.pods("calc") {
				if diff := cmp.Diff(wantRef, p.OwnerReferences); diff != "" {
					t.Errorf("pod %s owner references (-want +got):\n%s", p.Name, diff)
				}
				if len(p.Finalizers) != 0 {
					t.Errorf("pod %s keeps finalizers %v after being counted", p.Name, p.Finalizers)
				}
				if p.GenerateName != "calc-" || p.Labels["app"] != "batch" || p.Spec.Containers[0].Image != "testapp:1" {
					t.Errorf("pod %s does not come from the template: %+v", p.Name, p.ObjectMeta)
				}
			}
			if n := e.countEvents(controllerutil.ReasonSuccessfulCreate); n != tt.wantPods {
				t.Errorf("%d SuccessfulCreate events, want %d", n, tt.wantPods)
			}
			e.waitEvent(v1.EventTypeNormal, reasonCompleted, "Job completed")
		})
	}
}

func TestNewPodsCarryTheTrackingFinalizer(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	e.createJob(newJob("fin", ptr.To[int32](2), 2))
	for _, name := range e.waitRunning("fin", 2) {
		p, _ := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
		if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s finalizers %v, want %s", name, p.Finalizers, batchv1.JobTrackingFinalizer)
		}
	}
}

func TestWorkQueueJob(t *testing.T) {
	// No completions: done once one pod succeeded and all have finished.
	e := start(t, fakeapi.Options{}, nil)
	e.createJob(newJob("queue", nil, 2))
	names := e.waitRunning("queue", 2)
	e.exit(names[0], 0)
	e.waitJob("queue", "1 succeeded", func(j *batchv1.Job) bool { return j.Status.Succeeded == 1 && j.Status.Active == 1 })
	// The other keeps running; nothing replaces the finished one.
	time.Sleep(50 * time.Millisecond)
	if n := len(e.pods("queue")); n != 2 {
		t.Fatalf("%d pods after a success, want the 2 first", n)
	}
	if j := e.getJob("queue"); hasCondition(j, batchv1.JobComplete, "") {
		t.Fatalf("complete while a pod runs: %s", statusString(j))
	}
	e.exit(names[1], 0)
	j := e.waitJob("queue", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
	if j.Status.Succeeded != 2 {
		t.Errorf("succeeded %d, want 2", j.Status.Succeeded)
	}
}

func TestIndexedJob(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	job := newJob("idx", ptr.To[int32](3), 3)
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.Template.Spec.Containers[0].Env = []v1.EnvVar{{Name: "OTHER", Value: "x"}}
	e.createJob(job)
	e.waitRunning("idx", 3)
	byIndex := map[string]v1.Pod{}
	for _, p := range e.running("idx") {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
			t.Errorf("pod %s: index label %q, annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
		}
		if p.Spec.Hostname != "idx-"+ix || p.GenerateName != "idx-"+ix+"-" {
			t.Errorf("pod %s: hostname %q generateName %q, want idx-%s and idx-%s-", p.Name, p.Spec.Hostname, p.GenerateName, ix, ix)
		}
		wantEnv := []v1.EnvVar{{Name: "OTHER", Value: "x"}, {Name: "JOB_COMPLETION_INDEX", ValueFrom: &v1.EnvVarSource{
			FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']"},
		}}}
		if diff := cmp.Diff(wantEnv, p.Spec.Containers[0].Env); diff != "" {
			t.Errorf("pod %s env (-want +got):\n%s", p.Name, diff)
		}
		byIndex[ix] = p
	}
	if len(byIndex) != 3 || byIndex["0"].Name == "" || byIndex["1"].Name == "" || byIndex["2"].Name == "" {
		t.Fatalf("indexes %v, want 0, 1 and 2 once each", slices.Collect(mapsKeys(byIndex)))
	}

	// Index 1 fails once: only index 1 is created again.
	e.exit(byIndex["1"].Name, 1)
	testwait.For(t, "a new pod for index 1", func() (bool, string) {
		for _, p := range e.running("idx") {
			if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "1" && p.Name != byIndex["1"].Name {
				byIndex["1"] = p
				return true, ""
			}
		}
		return false, podsString(e.pods("idx"))
	})
	e.exit(byIndex["2"].Name, 0)
	e.waitJob("idx", `completedIndexes "2"`, func(j *batchv1.Job) bool { return j.Status.CompletedIndexes == "2" && j.Status.Succeeded == 1 })
	e.exit(byIndex["0"].Name, 0)
	e.waitJob("idx", `completedIndexes "0,2"`, func(j *batchv1.Job) bool { return j.Status.CompletedIndexes == "0,2" })
	e.exit(byIndex["1"].Name, 0)
	j := e.waitJob("idx", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
	if j.Status.CompletedIndexes != "0-2" || j.Status.Succeeded != 3 || j.Status.Failed != 1 {
		t.Errorf("final status %s, want completedIndexes 0-2, succeeded 3, failed 1", statusString(j))
	}
	if n := len(e.pods("idx")); n != 4 {
		t.Errorf("%d pods, want 4 (one retry)", n)
	}
}

func mapsKeys(m map[string]v1.Pod) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestBackoffLimit(t *testing.T) {
	tests := []struct {
		name         string
		backoffLimit int32
		wantPods     int
	}{
		{"backoffLimit 0: the first failure fails the job", 0, 1},
		{"backoffLimit 2: three failures", 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The time each pod is created, to check the back-off.
			var mu sync.Mutex
			var createdAt []time.Time
			e := start(t, fakeapi.Options{}, func(cs *fake.Clientset) {
				cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					mu.Lock()
					createdAt = append(createdAt, time.Now())
					mu.Unlock()
					return false, nil, nil
				})
			})
			job := newJob("flaky", ptr.To[int32](1), 1)
			job.Spec.BackoffLimit = ptr.To(tt.backoffLimit)
			e.createJob(job)
			var failedAt []time.Time
			for i := range tt.wantPods {
				names := e.waitRunning("flaky", 1)
				failedAt = append(failedAt, time.Now())
				e.exit(names[0], 1)
				e.waitJob("flaky", fmt.Sprintf("%d failed", i+1), func(j *batchv1.Job) bool { return j.Status.Failed == int32(i+1) })
			}
			j := e.waitJob("flaky", "Failed", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobFailed, "") })
			wantConds := []string{"FailureTarget=True", "Failed=True"}
			if diff := cmp.Diff(wantConds, conditionTypes(j)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			for _, c := range j.Status.Conditions {
				if c.Reason != batchv1.JobReasonBackoffLimitExceeded || c.Message != "Job has reached the specified backoff limit" {
					t.Errorf("condition %s: reason %q message %q", c.Type, c.Reason, c.Message)
				}
			}
			if j.Status.Failed != tt.backoffLimit+1 || j.Status.Succeeded != 0 || j.Status.CompletionTime != nil {
				t.Errorf("final status %s, completionTime %v", statusString(j), j.Status.CompletionTime)
			}
			if n := len(e.pods("flaky")); n != tt.wantPods {
				t.Errorf("%d pods, want %d", n, tt.wantPods)
			}
			e.waitEvent(v1.EventTypeWarning, batchv1.JobReasonBackoffLimitExceeded, "backoff limit")
			// Replacements wait testBackoff after the first failure,
			// twice that after the second.
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < len(createdAt); i++ {
				want := testBackoff << (i - 1)
				if got := createdAt[i].Sub(failedAt[i-1]); got < want-20*time.Millisecond {
					t.Errorf("replacement %d created %v after the failure, want at least the back-off %v", i, got, want)
				}
			}
		})
	}
}

func TestPodFailurePolicy(t *testing.T) {
	disruption := v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: "PreemptionByScheduler"}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: v1.DisruptionTarget, Status: v1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0, 42}}},
	}}
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"FailJob on exit code 42 fails the job and deletes the other pods", func(t *testing.T, e *env) {
			names := e.waitRunning("pfp", 2)
			e.exit(names[0], 42)
			j := e.waitJob("pfp", "Failed", func(j *batchv1.Job) bool {
				return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonPodFailurePolicy)
			})
			want := fmt.Sprintf("Container work for pod default/%s failed with exit code 42 matching FailJob rule at index 0", names[0])
			if c := condition(j, batchv1.JobFailed); c.Message != want {
				t.Errorf("message %q, want %q", c.Message, want)
			}
			if diff := cmp.Diff([]string{"FailureTarget=True", "Failed=True"}, conditionTypes(j)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			// The other pod was deleted and, never finished, counted failed.
			if len(e.pods("pfp")) != 1 || j.Status.Failed != 2 || j.Status.Active != 0 {
				t.Errorf("after FailJob: %s, pods %s", statusString(j), podsString(e.pods("pfp")))
			}
		}},
		{"Ignore on DisruptionTarget: not counted, replaced", func(t *testing.T, e *env) {
			names := e.waitRunning("pfp", 2)
			e.exit(names[0], 137, disruption)
			testwait.For(t, "a replacement", func() (bool, string) {
				return len(e.running("pfp")) == 2 && len(e.pods("pfp")) == 3, podsString(e.pods("pfp"))
			})
			j := e.getJob("pfp")
			if j.Status.Failed != 0 || len(j.Status.Conditions) != 0 {
				t.Errorf("an ignored failure changed the job: %s", statusString(j))
			}
		}},
		{"Count: exit code 3 counts against backoffLimit 0", func(t *testing.T, e *env) {
			names := e.waitRunning("pfp", 2)
			e.exit(names[0], 3)
			j := e.waitJob("pfp", "Failed", func(j *batchv1.Job) bool {
				return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
			})
			if j.Status.Failed != 2 {
				t.Errorf("failed %d, want 2 (the counted pod and the deleted one)", j.Status.Failed)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, fakeapi.Options{}, nil)
			job := newJob("pfp", ptr.To[int32](2), 2)
			job.Spec.BackoffLimit = ptr.To[int32](0)
			job.Spec.PodFailurePolicy = policy
			e.createJob(job)
			tt.run(t, e)
		})
	}
}

func TestActiveDeadline(t *testing.T) {
	// Graceful deletion: the deleted pods terminate until the test, as the
	// kubelet, finalizes them; Failed waits for that.
	e := start(t, fakeapi.Options{GracefulPodDeletion: true}, nil)
	job := newJob("slow", ptr.To[int32](4), 2)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	began := time.Now()
	e.createJob(job)
	names := e.waitRunning("slow", 2)
	e.markRunning(names[0])
	e.waitJob("slow", "FailureTarget DeadlineExceeded", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded)
	})
	if d := time.Since(began); d < time.Second {
		t.Errorf("deadline hit after %v, want at least 1s", d)
	}
	j := e.waitJob("slow", "2 terminating", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Terminating, 0) == 2 })
	if hasCondition(j, batchv1.JobFailed, "") || j.Status.Active != 0 {
		t.Fatalf("failed while pods terminate: %s", statusString(j))
	}
	for _, n := range names {
		if err := fakeapi.Finalize(e.cs, ns, n); err != nil {
			t.Fatal(err)
		}
	}
	j = e.waitJob("slow", "Failed", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)
	})
	if c := condition(j, batchv1.JobFailed); c.Message != "Job was active longer than specified deadline" {
		t.Errorf("message %q", c.Message)
	}
	if j.Status.Failed != 2 || ptr.Deref(j.Status.Terminating, -1) != 0 || len(e.pods("slow")) != 0 {
		t.Errorf("final status %s, pods %s", statusString(j), podsString(e.pods("slow")))
	}
	e.waitEvent(v1.EventTypeWarning, batchv1.JobReasonDeadlineExceeded, "deadline")
}

func TestSuspendResume(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	job := newJob("later", ptr.To[int32](3), 2)
	job.Spec.Suspend = ptr.To(true)
	e.createJob(job)
	j := e.waitJob("later", "Suspended", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobSuspended, "JobSuspended") })
	if j.Status.StartTime != nil || len(e.pods("later")) != 0 {
		t.Fatalf("suspended job started: startTime %v, pods %s", j.Status.StartTime, podsString(e.pods("later")))
	}

	e.updateJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(false) })
	names := e.waitRunning("later", 2)
	e.waitJob("later", "resumed", func(j *batchv1.Job) bool {
		c := condition(j, batchv1.JobSuspended)
		return c != nil && c.Status == v1.ConditionFalse && c.Reason == "JobResumed" && j.Status.StartTime != nil && j.Status.Active == 2
	})

	e.exit(names[0], 0)
	e.waitJob("later", "1 succeeded", func(j *batchv1.Job) bool { return j.Status.Succeeded == 1 })
	e.waitRunning("later", 2)
	e.updateJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) })
	j = e.waitJob("later", "suspended again, pods gone", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobSuspended, "JobSuspended") && j.Status.Active == 0 && len(e.running("later")) == 0
	})
	// Pods deleted by suspension are not failures.
	if j.Status.Failed != 0 || j.Status.Succeeded != 1 {
		t.Errorf("after suspension: %s", statusString(j))
	}
	testwait.For(t, "Suspended twice and Resumed once", func() (bool, string) {
		return e.countEvents(reasonSuspended) == 2 && e.countEvents(reasonResumed) == 1, fmt.Sprint(e.rec.Events())
	})
	e.updateJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(false) })
	for _, n := range e.waitRunning("later", 2) {
		e.exit(n, 0)
	}
	j = e.waitJob("later", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
	if j.Status.Succeeded != 3 {
		t.Errorf("succeeded %d, want 3", j.Status.Succeeded)
	}
}

func TestParallelismDown(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	e.createJob(newJob("wide", ptr.To[int32](4), 3))
	names := e.waitRunning("wide", 3)
	e.markRunning(names[0])
	e.waitJob("wide", "ready 1", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Ready, 0) == 1 })
	e.updateJob("wide", func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](1) })
	e.waitRunning("wide", 1)
	j := e.waitJob("wide", "active 1", func(j *batchv1.Job) bool { return j.Status.Active == 1 })
	if j.Status.Failed != 0 {
		t.Errorf("pods removed for parallelism counted failed: %s", statusString(j))
	}
	// The ready pod is the one kept.
	if left := e.running("wide"); left[0].Name != names[0] {
		t.Errorf("kept %s, want the ready pod %s", left[0].Name, names[0])
	}
	testwait.For(t, "2 SuccessfulDelete events", func() (bool, string) {
		return e.countEvents(controllerutil.ReasonSuccessfulDelete) == 2, fmt.Sprint(e.rec.Events())
	})
}

func TestPodReplacementPolicy(t *testing.T) {
	tests := []struct {
		name   string
		policy batchv1.PodReplacementPolicy
		// wantEarly: replaced while the deleted pod still terminates.
		wantEarly bool
	}{
		{"TerminatingOrFailed replaces a terminating pod at once", batchv1.TerminatingOrFailed, true},
		{"Failed waits for it to fail", batchv1.Failed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, fakeapi.Options{GracefulPodDeletion: true}, nil)
			job := newJob("repl", ptr.To[int32](1), 1)
			job.Spec.PodReplacementPolicy = ptr.To(tt.policy)
			e.createJob(job)
			victim := e.waitRunning("repl", 1)[0]
			e.markRunning(victim)
			if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, victim, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			e.waitJob("repl", "terminating 1", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Terminating, 0) == 1 })
			if tt.wantEarly {
				e.waitRunning("repl", 1)
				e.waitJob("repl", "failed 1", func(j *batchv1.Job) bool { return j.Status.Failed == 1 })
			} else {
				time.Sleep(2 * testBackoff)
				if n := len(e.running("repl")); n != 0 {
					t.Fatalf("%d replacements while the pod terminates, want none", n)
				}
				if j := e.getJob("repl"); j.Status.Failed != 0 {
					t.Fatalf("a terminating pod counted failed: %s", statusString(j))
				}
				// The kubelet killed it: it failed.
				e.exit(victim, 137)
				e.waitJob("repl", "failed 1", func(j *batchv1.Job) bool { return j.Status.Failed == 1 })
				e.waitRunning("repl", 1)
			}
			if err := fakeapi.Finalize(e.cs, ns, victim); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "the victim gone", func() (bool, string) {
				_, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, victim, metav1.GetOptions{})
				return apierrors.IsNotFound(err), podsString(e.pods("repl"))
			})
			e.waitJob("repl", "terminating 0", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Terminating, -1) == 0 && j.Status.Failed == 1 })
		})
	}
}

// TestTrackingFinalizer checks that finished pods are counted exactly once
// through status.uncountedTerminatedPods, whatever happens to them.
func TestTrackingFinalizer(t *testing.T) {
	var blockFinalizerRemoval atomic.Bool
	var removals atomic.Int32
	blocking := func(cs *fake.Clientset) {
		cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if strings.Contains(string(a.(k8stesting.PatchAction).GetPatch()), "deleteFromPrimitiveList") {
				if blockFinalizerRemoval.Load() {
					return true, nil, apierrors.NewServiceUnavailable("etcd is slow")
				}
				// Count the removals that remove something.
				if obj, err := cs.Tracker().Get(fakeapi.PodsResource, a.GetNamespace(), a.(k8stesting.PatchAction).GetName()); err == nil && slices.Contains(obj.(*v1.Pod).Finalizers, batchv1.JobTrackingFinalizer) {
					removals.Add(1)
				}
			}
			return false, nil, nil
		})
	}
	t.Run("recorded as uncounted before the finalizer goes", func(t *testing.T) {
		blockFinalizerRemoval.Store(true)
		removals.Store(0)
		e := start(t, fakeapi.Options{}, blocking)
		e.createJob(newJob("track", ptr.To[int32](1), 1))
		pod := e.waitRunning("track", 1)[0]
		p, _ := e.cs.CoreV1().Pods(ns).Get(e.ctx, pod, metav1.GetOptions{})
		e.exit(pod, 0)
		j := e.waitJob("track", "the pod uncounted", func(j *batchv1.Job) bool {
			u := j.Status.UncountedTerminatedPods
			return u != nil && slices.Equal(u.Succeeded, []types.UID{p.UID})
		})
		if j.Status.Succeeded != 0 || hasCondition(j, batchv1.JobComplete, "") {
			t.Fatalf("counted while the finalizer stays: %s", statusString(j))
		}
		if !hasCondition(j, batchv1.JobSuccessCriteriaMet, "") {
			t.Errorf("no SuccessCriteriaMet yet: %s", statusString(j))
		}
		// The user deletes the pod meanwhile: the finalizer holds it.
		if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		blockFinalizerRemoval.Store(false)
		j = e.waitJob("track", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
		if j.Status.Succeeded != 1 || len(j.Status.UncountedTerminatedPods.Succeeded) != 0 {
			t.Errorf("final status %s, want succeeded 1 and nothing uncounted", statusString(j))
		}
		testwait.For(t, "the pod gone", func() (bool, string) { return len(e.pods("track")) == 0, podsString(e.pods("track")) })
		time.Sleep(50 * time.Millisecond)
		if n := removals.Load(); n != 1 {
			t.Errorf("%d finalizer removals, want 1", n)
		}
	})
	t.Run("a failed pod deleted at once is counted once", func(t *testing.T) {
		blockFinalizerRemoval.Store(false)
		e := start(t, fakeapi.Options{}, blocking)
		job := newJob("gone", ptr.To[int32](1), 1)
		job.Spec.BackoffLimit = ptr.To[int32](3)
		e.createJob(job)
		pod := e.waitRunning("gone", 1)[0]
		e.exit(pod, 1)
		if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitJob("gone", "failed 1", func(j *batchv1.Job) bool { return j.Status.Failed == 1 })
		testwait.For(t, "the pod gone", func() (bool, string) {
			_, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, pod, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
		next := e.waitRunning("gone", 1)[0]
		e.exit(next, 0)
		j := e.waitJob("gone", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
		if j.Status.Failed != 1 || j.Status.Succeeded != 1 {
			t.Errorf("final status %s, want failed 1 succeeded 1", statusString(j))
		}
	})
	t.Run("an uncounted uid whose pod is gone is counted", func(t *testing.T) {
		// As after a restart between writing the uid and counting it.
		e := start(t, fakeapi.Options{}, func(cs *fake.Clientset) {
			job := newJob("restart", ptr.To[int32](1), 1)
			job.UID = "job-uid"
			job.Spec.BackoffLimit = ptr.To[int32](6)
			job.Spec.Parallelism, job.Spec.CompletionMode, job.Spec.Suspend = ptr.To[int32](1), ptr.To(batchv1.NonIndexedCompletion), ptr.To(false)
			job.Spec.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
			job.Status.StartTime = &metav1.Time{Time: time.Now()}
			job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"pod-gone"}}
			if err := cs.Tracker().Add(job); err != nil {
				t.Fatal(err)
			}
		})
		j := e.waitJob("restart", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") })
		if j.Status.Succeeded != 1 || len(e.pods("restart")) != 0 {
			t.Errorf("status %s with %d pods, want succeeded 1 from the uid and no pod", statusString(j), len(e.pods("restart")))
		}
	})
}

func TestAdoptionAndOrphans(t *testing.T) {
	t.Run("a matching orphan is adopted with the finalizer", func(t *testing.T) {
		e := start(t, fakeapi.Options{}, func(cs *fake.Clientset) {
			if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), &v1.Pod{ObjectMeta: metav1.ObjectMeta{
				Name: "stray", Namespace: ns, Labels: map[string]string{batchv1.JobNameLabel: "adopter"},
			}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		})
		job := e.createJob(newJob("adopter", ptr.To[int32](1), 1))
		testwait.For(t, "stray adopted", func() (bool, string) {
			p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, "stray", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			ref := metav1.GetControllerOf(p)
			return ref != nil && ref.UID == job.UID && slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer), fmt.Sprint(p.OwnerReferences, p.Finalizers)
		})
		time.Sleep(50 * time.Millisecond)
		if n := len(e.pods("adopter")); n != 1 {
			t.Errorf("%d pods, want only the adopted one", n)
		}
		e.exit("stray", 0)
		e.waitJob("adopter", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, "") && j.Status.Succeeded == 1 })
	})
	t.Run("a deleted job's pods lose the finalizer", func(t *testing.T) {
		e := start(t, fakeapi.Options{}, nil)
		e.createJob(newJob("doomed", ptr.To[int32](1), 1))
		pod := e.waitRunning("doomed", 1)[0]
		if err := e.cs.BatchV1().Jobs(ns).Delete(e.ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "the finalizer removed", func() (bool, string) {
			p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, pod, metav1.GetOptions{})
			return err == nil && len(p.Finalizers) == 0, fmt.Sprint(p.Finalizers, err)
		})
	})
}

func TestCreationFailures(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	e := start(t, fakeapi.Options{}, func(cs *fake.Clientset) {
		cs.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			if fail.Load() {
				return true, nil, errors.New("exceeded quota")
			}
			return false, nil, nil
		})
	})
	e.createJob(newJob("quota", ptr.To[int32](4), 4))
	testwait.For(t, "FailedCreate events", func() (bool, string) { return e.countEvents(controllerutil.ReasonFailedCreate) > 1, "" })
	if !e.hasEvent(v1.EventTypeWarning, controllerutil.ReasonFailedCreate, "Error creating: exceeded quota") {
		t.Errorf("events %v", e.rec.Events())
	}
	fail.Store(false)
	e.waitRunning("quota", 4)
	e.waitJob("quota", "active 4", func(j *batchv1.Job) bool { return j.Status.Active == 4 })
	// Failed creations gave their expectations back, successful ones were
	// observed once: exactly 4 pods, none extra.
	time.Sleep(50 * time.Millisecond)
	if n := len(e.pods("quota")); n != 4 {
		t.Errorf("%d pods, want 4", n)
	}
}

func TestBackoffLimitPerIndex(t *testing.T) {
	indexOf := func(p v1.Pod) string { return p.Annotations[batchv1.JobCompletionIndexAnnotation] }
	// runningAt returns the running pod of index ix.
	runningAt := func(e *env, ix string) v1.Pod {
		t.Helper()
		var pod v1.Pod
		testwait.For(t, "a pod running index "+ix, func() (bool, string) {
			for _, p := range e.running("perix") {
				if indexOf(p) == ix {
					pod = p
					return true, ""
				}
			}
			return false, podsString(e.pods("perix"))
		})
		return pod
	}
	tests := []struct {
		name             string
		maxFailedIndexes *int32
		run              func(t *testing.T, e *env)
	}{
		{"an index failing past its limit fails only itself, then the job", nil, func(t *testing.T, e *env) {
			first := runningAt(e, "1")
			e.exit(first.Name, 1)
			second := runningAt(e, "1")
			if got := second.Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "1" {
				t.Errorf("replacement's failure count %q, want 1", got)
			}
			e.exit(second.Name, 1)
			e.waitJob("perix", "failedIndexes 1", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.FailedIndexes, "") == "1" })
			// The other indexes go on; index 1 is not retried.
			for _, ix := range []string{"0", "2"} {
				e.exit(runningAt(e, ix).Name, 0)
			}
			j := e.waitJob("perix", "Failed", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonFailedIndexes) })
			if j.Status.CompletedIndexes != "0,2" || j.Status.Failed != 2 || j.Status.Succeeded != 2 || len(e.pods("perix")) != 4 {
				t.Errorf("final status %s, pods %s", statusString(j), podsString(e.pods("perix")))
			}
		}},
		{"maxFailedIndexes 0: the first failed index fails the job", ptr.To[int32](0), func(t *testing.T, e *env) {
			e.exit(runningAt(e, "2").Name, 1)
			e.exit(runningAt(e, "2").Name, 1)
			j := e.waitJob("perix", "Failed", func(j *batchv1.Job) bool {
				return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonMaxFailedIndexesExceeded)
			})
			if len(e.running("perix")) != 0 || ptr.Deref(j.Status.FailedIndexes, "") != "2" {
				t.Errorf("final status %s, pods %s", statusString(j), podsString(e.pods("perix")))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, fakeapi.Options{}, nil)
			job := newJob("perix", ptr.To[int32](3), 3)
			job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			job.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
			job.Spec.MaxFailedIndexes = tt.maxFailedIndexes
			e.createJob(job)
			tt.run(t, e)
		})
	}
}

func TestSuccessPolicy(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	job := newJob("leader", ptr.To[int32](3), 3)
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
	e.createJob(job)
	for _, n := range e.waitRunning("leader", 3) {
		e.markRunning(n)
	}
	// Once the controller has seen its pods (ready is counted from its
	// cache): a sync ending the Job while creations are unobserved deletes
	// the others but leaves the ending to a later sync, which counts them
	// failed, as in Kubernetes.
	e.waitJob("leader", "ready 3", func(j *batchv1.Job) bool { return ptr.Deref(j.Status.Ready, 0) == 3 })
	for _, p := range e.running("leader") {
		if p.Annotations[batchv1.JobCompletionIndexAnnotation] == "0" {
			e.exit(p.Name, 0)
		}
	}
	j := e.waitJob("leader", "Complete", func(j *batchv1.Job) bool { return hasCondition(j, batchv1.JobComplete, batchv1.JobReasonSuccessPolicy) })
	if diff := cmp.Diff([]string{"SuccessCriteriaMet=True", "Complete=True"}, conditionTypes(j)); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	// The workers were deleted, not counted as failures.
	if j.Status.Succeeded != 1 || j.Status.Failed != 0 || len(e.running("leader")) != 0 || j.Status.CompletedIndexes != "0" {
		t.Errorf("final status %s, pods %s", statusString(j), podsString(e.pods("leader")))
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	// Containers restart in place: their restarts count as failures.
	e := start(t, fakeapi.Options{}, nil)
	job := newJob("restarts", ptr.To[int32](1), 1)
	job.Spec.BackoffLimit = ptr.To[int32](2)
	job.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	e.createJob(job)
	pod := e.waitRunning("restarts", 1)[0]
	e.markRunning(pod)
	e.updatePodStatus(pod, func(p *v1.Pod) { p.Status.ContainerStatuses[0].RestartCount = 2 })
	j := e.waitJob("restarts", "Failed", func(j *batchv1.Job) bool {
		return hasCondition(j, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	})
	if j.Status.Failed != 1 || len(e.pods("restarts")) != 0 {
		t.Errorf("final status %s, pods %s; want the pod deleted and counted failed", statusString(j), podsString(e.pods("restarts")))
	}
}

func TestManagedByAnotherController(t *testing.T) {
	e := start(t, fakeapi.Options{}, nil)
	job := newJob("foreign", ptr.To[int32](1), 1)
	job.Spec.ManagedBy = ptr.To("example.com/other-controller")
	e.createJob(job)
	e.createJob(newJob("ours", ptr.To[int32](1), 1))
	e.waitRunning("ours", 1)
	time.Sleep(50 * time.Millisecond)
	if n := len(e.pods("foreign")); n != 0 {
		t.Errorf("%d pods for a Job managed elsewhere, want none", n)
	}
	if j := e.getJob("foreign"); j.Status.StartTime != nil || j.Status.Active != 0 {
		t.Errorf("status written for a Job managed elsewhere: %s", statusString(j))
	}
}
