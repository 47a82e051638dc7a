package job

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestIntervals(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		completions int
		add         []int
		want        string
		wantTotal   int
	}{
		{name: "empty", in: "", completions: 5, want: "", wantTotal: 0},
		{name: "one", in: "", completions: 5, add: []int{3}, want: "3", wantTotal: 1},
		{name: "two adjacent are listed", in: "", completions: 5, add: []int{1, 2}, want: "1,2", wantTotal: 2},
		{name: "three adjacent are a range", in: "1,2", completions: 5, add: []int{3}, want: "1-3", wantTotal: 3},
		{name: "merge joins ranges", in: "0-2,6-8", completions: 10, add: []int{3, 4, 5}, want: "0-8", wantTotal: 9},
		{name: "already there", in: "0-4", completions: 10, add: []int{2}, want: "0-4", wantTotal: 5},
		{name: "past completions dropped", in: "1,3-7,9", completions: 5, want: "1,3,4", wantTotal: 3},
		{name: "corrupt parts skipped", in: "1,x,4-a,6", completions: 10, want: "1,6", wantTotal: 2},
		{name: "unordered input merged", in: "3,1-4", completions: 10, want: "1-4", wantTotal: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv := parseIntervals(tt.in, tt.completions).withIndexes(tt.add)
			if got := iv.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := iv.total(); got != tt.wantTotal {
				t.Errorf("total() = %d, want %d", got, tt.wantTotal)
			}
			back := parseIntervals(iv.String(), tt.completions)
			if diff := cmp.Diff(iv, back, cmp.AllowUnexported(interval{})); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	iv := parseIntervals("1,3-5,9", 10)
	for ix, want := range map[int]bool{0: false, 1: true, 2: false, 3: true, 5: true, 6: false, 9: true, 10: false} {
		if iv.has(ix) != want {
			t.Errorf("has(%d) = %v, want %v", ix, !want, want)
		}
	}
}

func TestPendingIndexes(t *testing.T) {
	indexed := func(ix string, phase v1.PodPhase, deleting bool) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{batchv1.JobCompletionIndexAnnotation: ix}}, Status: v1.PodStatus{Phase: phase}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	tests := []struct {
		name      string
		pods      []*v1.Pod
		completed string
		failed    string
		policy    batchv1.PodReplacementPolicy
		count     int
		want      []int
	}{
		{name: "nothing yet", count: 3, want: []int{0, 1, 2}},
		{name: "skips active and completed", pods: []*v1.Pod{indexed("1", v1.PodRunning, false)}, completed: "0,3", count: 3, want: []int{2, 4}},
		{name: "skips failed indexes", completed: "0", failed: "1", count: 5, want: []int{2, 3, 4}},
		{name: "count limits", count: 1, want: []int{0}},
		{name: "a terminating pod's index is pending by default", pods: []*v1.Pod{indexed("0", v1.PodRunning, true)}, count: 2, want: []int{0, 1}},
		{name: "not with podReplacementPolicy Failed", pods: []*v1.Pod{indexed("0", v1.PodRunning, true)}, policy: batchv1.Failed, count: 2, want: []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := newJob("j", ptr.To[int32](5), 5)
			job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			if tt.policy != "" {
				job.Spec.PodReplacementPolicy = &tt.policy
			}
			jc := &syncCtx{job: job, pods: tt.pods, succeededIndexes: parseIntervals(tt.completed, 5), failedIndexes: parseIntervals(tt.failed, 5)}
			for _, p := range tt.pods {
				if p.DeletionTimestamp == nil {
					jc.activePods = append(jc.activePods, p)
				}
			}
			if diff := cmp.Diff(tt.want, pendingIndexes(jc, tt.count, 5)); diff != "" {
				t.Errorf("pendingIndexes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchPodFailurePolicy(t *testing.T) {
	exitCodes := func(op batchv1.PodFailurePolicyOnExitCodesOperator, container *string, codes ...int32) *batchv1.PodFailurePolicyOnExitCodesRequirement {
		return &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: op, ContainerName: container, Values: codes}
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: v1.DisruptionTarget, Status: v1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: exitCodes(batchv1.PodFailurePolicyOnExitCodesOpIn, ptr.To("main"), 42)},
		{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: exitCodes(batchv1.PodFailurePolicyOnExitCodesOpIn, nil, 7)},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: exitCodes(batchv1.PodFailurePolicyOnExitCodesOpNotIn, nil, 1, 2)},
	}}
	pod := func(conds []v1.PodCondition, containers ...v1.ContainerStatus) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: v1.PodStatus{Phase: v1.PodFailed, Conditions: conds, ContainerStatuses: containers}}
	}
	exited := func(name string, code int32) v1.ContainerStatus {
		return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
	}
	running := v1.ContainerStatus{Name: "side", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
	tests := []struct {
		name string
		pod  *v1.Pod
		want policyMatch
	}{
		{"disruption ignored", pod([]v1.PodCondition{{Type: v1.DisruptionTarget, Status: v1.ConditionTrue}}, exited("main", 42)), policyMatch{action: batchv1.PodFailurePolicyActionIgnore}},
		{"condition False does not match", pod([]v1.PodCondition{{Type: v1.DisruptionTarget, Status: v1.ConditionFalse}}, exited("main", 1)), policyMatch{count: true}},
		{"FailJob on the named container", pod(nil, running, exited("main", 42)), policyMatch{action: batchv1.PodFailurePolicyActionFailJob, count: true,
			failJobMessage: "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"}},
		{"another container's 42 is not FailJob; NotIn 1,2 counts it", pod(nil, exited("other", 42)), policyMatch{action: batchv1.PodFailurePolicyActionCount, count: true}},
		{"FailIndex", pod(nil, exited("main", 7)), policyMatch{action: batchv1.PodFailurePolicyActionFailIndex, count: true}},
		{"no rule matches exit code 1", pod(nil, exited("main", 1)), policyMatch{count: true}},
		{"exit code 0 never matches", pod(nil, exited("main", 0)), policyMatch{count: true}},
		{"init containers are matched too", &v1.Pod{Status: v1.PodStatus{Phase: v1.PodFailed, InitContainerStatuses: []v1.ContainerStatus{exited("init", 7)}}}, policyMatch{action: batchv1.PodFailurePolicyActionFailIndex, count: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, matchPodFailurePolicy(policy, tt.pod), cmp.AllowUnexported(policyMatch{})); diff != "" {
				t.Errorf("match (-want +got):\n%s", diff)
			}
		})
	}
	if m := matchPodFailurePolicy(nil, pod(nil, exited("main", 42))); !m.count || m.action != "" {
		t.Errorf("no policy: %+v, want counted", m)
	}
}

func TestBackoff(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	finishedAt := func(d time.Duration, phase v1.PodPhase) *v1.Pod {
		return &v1.Pod{Status: v1.PodStatus{Phase: phase, ContainerStatuses: []v1.ContainerStatus{{
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t0.Add(d))}},
		}}}}
	}
	const base, maxDelay = 10 * time.Second, 6 * time.Minute
	tests := []struct {
		name      string
		previous  *backoffRecord
		succeeded []*v1.Pod
		failed    []*v1.Pod
		now       time.Duration // since t0
		wantLeft  time.Duration
	}{
		{name: "no failure", now: 0, wantLeft: 0},
		{name: "one failure: base", failed: []*v1.Pod{finishedAt(0, v1.PodFailed)}, now: 3 * time.Second, wantLeft: 7 * time.Second},
		{name: "three failures: 4×base from the last", failed: []*v1.Pod{finishedAt(0, v1.PodFailed), finishedAt(2*time.Second, v1.PodFailed), finishedAt(time.Second, v1.PodFailed)}, now: 2 * time.Second, wantLeft: 40 * time.Second},
		{name: "passed", failed: []*v1.Pod{finishedAt(0, v1.PodFailed)}, now: 11 * time.Second, wantLeft: 0},
		{name: "capped", previous: &backoffRecord{failuresAfterLastSuccess: 20}, failed: []*v1.Pod{finishedAt(0, v1.PodFailed)}, now: 0, wantLeft: maxDelay},
		{name: "a later success resets", previous: &backoffRecord{failuresAfterLastSuccess: 5}, failed: []*v1.Pod{finishedAt(0, v1.PodFailed)}, succeeded: []*v1.Pod{finishedAt(time.Second, v1.PodSucceeded)}, now: time.Second, wantLeft: 0},
		{name: "failures after the success count", failed: []*v1.Pod{finishedAt(0, v1.PodFailed), finishedAt(3*time.Second, v1.PodFailed)}, succeeded: []*v1.Pod{finishedAt(time.Second, v1.PodSucceeded)}, now: 3 * time.Second, wantLeft: base},
		{name: "earlier failures add up", previous: &backoffRecord{failuresAfterLastSuccess: 1}, failed: []*v1.Pod{finishedAt(0, v1.PodFailed)}, now: 0, wantLeft: 2 * base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBackoffStore()
			if tt.previous != nil {
				tt.previous.key = "ns/j"
				s.update(*tt.previous)
			}
			r := s.newRecord("ns/j", tt.succeeded, tt.failed)
			clk := clocktesting.NewFakePassiveClock(t0.Add(tt.now))
			if got := r.remainingTime(clk, base, maxDelay); got != tt.wantLeft {
				t.Errorf("remaining %v, want %v (record %+v)", got, tt.wantLeft, r)
			}
		})
	}
}

func TestFinishedTime(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	tests := []struct {
		name string
		pod  v1.Pod
		want time.Time
	}{
		{"latest container end", v1.Pod{Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{
			{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{FinishedAt: at(3 * time.Second)}}},
			{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{FinishedAt: at(5 * time.Second)}}},
		}}}, t0.Add(5 * time.Second)},
		{"not ready since", v1.Pod{Status: v1.PodStatus{
			Conditions:        []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: at(7 * time.Second)}},
			ContainerStatuses: []v1.ContainerStatus{{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}},
		}}, t0.Add(7 * time.Second)},
		{"deletion minus grace", v1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: ptr.To(at(30 * time.Second)), DeletionGracePeriodSeconds: ptr.To[int64](30)}}, t0},
		{"creation", v1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: at(time.Second)}}, t0.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := finishedTime(&tt.pod); !got.Equal(tt.want) {
				t.Errorf("finishedTime = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchSuccessPolicy(t *testing.T) {
	rule := func(indexes *string, count *int32) batchv1.SuccessPolicyRule {
		return batchv1.SuccessPolicyRule{SucceededIndexes: indexes, SucceededCount: count}
	}
	tests := []struct {
		name      string
		rules     []batchv1.SuccessPolicyRule
		succeeded string
		want      string
	}{
		{"all required indexes", []batchv1.SuccessPolicyRule{rule(ptr.To("0,2"), nil)}, "0-2", "Matched rules at index 0"},
		{"a required index missing", []batchv1.SuccessPolicyRule{rule(ptr.To("0,3"), nil)}, "0-2", ""},
		{"count of the required", []batchv1.SuccessPolicyRule{rule(ptr.To("0-5"), ptr.To[int32](2)), rule(nil, ptr.To[int32](1))}, "4,5", "Matched rules at index 0"},
		{"count of all", []batchv1.SuccessPolicyRule{rule(ptr.To("7"), nil), rule(nil, ptr.To[int32](3))}, "1,3,5", "Matched rules at index 1"},
		{"none yet", []batchv1.SuccessPolicyRule{rule(nil, ptr.To[int32](1))}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tt.rules}, 10, parseIntervals(tt.succeeded, 10))
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("matchSuccessPolicy = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
