package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	t0       = time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	running  = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited   = runtimeapi.ContainerState_CONTAINER_EXITED
	created  = runtimeapi.ContainerState_CONTAINER_CREATED
	started0 = metav1.NewTime(t0)
	ended0   = metav1.NewTime(t0.Add(time.Minute))
)

// ctr is a runtime container of the current sandbox.
func ctr(name string, attempt uint32, state runtimeapi.ContainerState, exit int32) *container {
	c := &container{id: name + "-" + string(rune('0'+attempt)), name: name, sandboxID: "sb", attempt: attempt, state: state, imageRef: "sha256:img"}
	if state != created {
		c.startedAt = t0
	}
	if state == exited {
		c.finishedAt, c.exitCode = t0.Add(time.Minute), exit
	}
	return c
}

func readySandbox(containers ...*container) *podRuntime {
	return &podRuntime{
		sandboxes:     []*runtimeapi.PodSandbox{{Id: "sb", State: runtimeapi.PodSandboxState_SANDBOX_READY, Metadata: &runtimeapi.PodSandboxMetadata{}}},
		sandboxStatus: &runtimeapi.PodSandboxStatus{Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.244.0.9"}},
		containers:    containers,
	}
}

func inputs(pod *v1.Pod, rt *podRuntime, reasons map[string]waiting) statusInputs {
	return statusInputs{
		pod: pod, old: pod.Status, rt: rt, reasons: reasons,
		ready:       func(*v1.Container, string) bool { return true },
		started:     func(*v1.Container, string) bool { return true },
		message:     func(c *container) string { return c.message },
		hostIPs:     []string{hostIP},
		runtimeName: "containerd",
		now:         t0.Add(time.Hour),
	}
}

func terminated(c *container, reason string) *v1.ContainerStateTerminated {
	return &v1.ContainerStateTerminated{ExitCode: c.exitCode, Reason: reason, StartedAt: started0, FinishedAt: ended0, ContainerID: "containerd://" + c.id}
}

func TestContainerStatuses(t *testing.T) {
	yes, no := true, false
	run2, prev1 := ctr("app", 2, running, 0), ctr("app", 1, exited, 1)
	crashed := ctr("app", 3, exited, 1)
	done := ctr("app", 0, exited, 0)
	failed := ctr("app", 0, exited, 2)
	failed.reason, failed.message = "OOMKilled", "out of memory"
	startFailed := ctr("app", 4, created, 0)
	tests := []struct {
		name    string
		policy  v1.RestartPolicy
		rt      *podRuntime
		reasons map[string]waiting
		want    v1.ContainerStatus
		phase   v1.PodPhase
	}{
		{
			name:  "not created yet",
			rt:    readySandbox(),
			want:  v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonContainerCreating}}, Started: &no},
			phase: v1.PodPending,
		},
		{
			name:    "image pull failing",
			rt:      readySandbox(),
			reasons: map[string]waiting{"app": {reason: reasonErrImagePull, message: "not found"}},
			want:    v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonErrImagePull, Message: "not found"}}, Started: &no},
			phase:   v1.PodPending,
		},
		{
			name: "running after restarts",
			rt:   readySandbox(run2, prev1),
			want: v1.ContainerStatus{
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started0}},
				LastTerminationState: v1.ContainerState{Terminated: terminated(prev1, "Error")},
				Ready:                true, RestartCount: 2, ImageID: "sha256:img", ContainerID: "containerd://" + run2.id, Started: &yes,
			},
			phase: v1.PodRunning,
		},
		{
			name:    "crash looping",
			rt:      readySandbox(crashed),
			reasons: map[string]waiting{"app": {reason: reasonCrashLoopBackOff, message: "back-off 4s"}},
			want: v1.ContainerStatus{
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff, Message: "back-off 4s"}},
				LastTerminationState: v1.ContainerState{Terminated: terminated(crashed, "Error")},
				RestartCount:         3, ImageID: "sha256:img", ContainerID: "containerd://" + crashed.id, Started: &no,
			},
			phase: v1.PodRunning,
		},
		{
			name: "exited, restart not decided yet",
			rt:   readySandbox(crashed),
			want: v1.ContainerStatus{
				State:        v1.ContainerState{Terminated: terminated(crashed, "Error")},
				RestartCount: 3, ImageID: "sha256:img", ContainerID: "containerd://" + crashed.id, Started: &no,
			},
			phase: v1.PodRunning,
		},
		{
			name:   "completed, never restarted",
			policy: v1.RestartPolicyNever,
			rt:     readySandbox(done),
			want: v1.ContainerStatus{
				State:   v1.ContainerState{Terminated: terminated(done, "Completed")},
				ImageID: "sha256:img", ContainerID: "containerd://" + done.id, Started: &no,
			},
			phase: v1.PodSucceeded,
		},
		{
			name:    "failed under Never: a stale reason does not hide the end",
			policy:  v1.RestartPolicyNever,
			rt:      readySandbox(failed),
			reasons: map[string]waiting{"app": {reason: reasonCrashLoopBackOff}},
			want: v1.ContainerStatus{
				State: v1.ContainerState{Terminated: func() *v1.ContainerStateTerminated {
					s := terminated(failed, "OOMKilled")
					s.Message = "out of memory"
					return s
				}()},
				ImageID: "sha256:img", ContainerID: "containerd://" + failed.id, Started: &no,
			},
			phase: v1.PodFailed,
		},
		{
			name:   "completed under OnFailure",
			policy: v1.RestartPolicyOnFailure,
			rt:     readySandbox(done),
			want: v1.ContainerStatus{
				State:   v1.ContainerState{Terminated: terminated(done, "Completed")},
				ImageID: "sha256:img", ContainerID: "containerd://" + done.id, Started: &no,
			},
			phase: v1.PodSucceeded,
		},
		{
			name:    "start failed",
			rt:      readySandbox(startFailed, crashed),
			reasons: map[string]waiting{"app": {reason: reasonRunContainer, message: "exec: not found"}},
			want: v1.ContainerStatus{
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonRunContainer, Message: "exec: not found"}},
				LastTerminationState: v1.ContainerState{Terminated: terminated(crashed, "Error")},
				RestartCount:         4, ImageID: "sha256:img", ContainerID: "containerd://" + startFailed.id, Started: &no,
			},
			phase: v1.PodRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("s")
			if tt.policy != "" {
				pod.Spec.RestartPolicy = tt.policy
			}
			s := computeStatus(inputs(pod, tt.rt, tt.reasons))
			tt.want.Name, tt.want.Image = "app", testImage
			if diff := cmp.Diff([]v1.ContainerStatus{tt.want}, s.ContainerStatuses); diff != "" {
				t.Errorf("container status (-want +got):\n%s", diff)
			}
			if s.Phase != tt.phase {
				t.Errorf("phase %s, want %s", s.Phase, tt.phase)
			}
		})
	}
}

func TestPodPhase(t *testing.T) {
	run := v1.ContainerState{Running: &v1.ContainerStateRunning{}}
	wait := v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}
	ok := v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0}}
	bad := v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1}}
	st := func(s v1.ContainerState) v1.ContainerStatus { return v1.ContainerStatus{State: s} }
	restarting := func(last v1.ContainerState) v1.ContainerStatus {
		return v1.ContainerStatus{State: wait, LastTerminationState: last}
	}
	tests := []struct {
		name   string
		policy v1.RestartPolicy
		init   []v1.ContainerStatus
		ctrs   []v1.ContainerStatus
		want   v1.PodPhase
	}{
		{"all waiting", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(wait), st(wait)}, v1.PodPending},
		{"one running, one waiting", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(run), st(wait)}, v1.PodPending},
		{"all running", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(run), st(run)}, v1.PodRunning},
		{"running and restarting", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(run), restarting(bad)}, v1.PodRunning},
		{"all stopped, Always", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(ok), st(bad)}, v1.PodRunning},
		{"all succeeded, Never", v1.RestartPolicyNever, nil, []v1.ContainerStatus{st(ok), st(ok)}, v1.PodSucceeded},
		{"one failed, Never", v1.RestartPolicyNever, nil, []v1.ContainerStatus{st(ok), st(bad)}, v1.PodFailed},
		{"all succeeded, OnFailure", v1.RestartPolicyOnFailure, nil, []v1.ContainerStatus{st(ok)}, v1.PodSucceeded},
		{"one failed, OnFailure", v1.RestartPolicyOnFailure, nil, []v1.ContainerStatus{st(ok), restarting(bad)}, v1.PodRunning},
		{"one still running, Never", v1.RestartPolicyNever, nil, []v1.ContainerStatus{st(run), st(bad)}, v1.PodRunning},
		{"init running", v1.RestartPolicyAlways, []v1.ContainerStatus{st(run)}, []v1.ContainerStatus{st(wait)}, v1.PodPending},
		{"init failed, Never", v1.RestartPolicyNever, []v1.ContainerStatus{st(bad)}, []v1.ContainerStatus{st(wait)}, v1.PodFailed},
		{"init failed, restarting", v1.RestartPolicyOnFailure, []v1.ContainerStatus{restarting(bad)}, []v1.ContainerStatus{st(wait)}, v1.PodPending},
		{"init done", v1.RestartPolicyAlways, []v1.ContainerStatus{st(ok)}, []v1.ContainerStatus{st(run)}, v1.PodRunning},
		{"a container without status", v1.RestartPolicyAlways, nil, []v1.ContainerStatus{st(run)}, v1.PodPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("p", func(p *v1.Pod) {
				p.Spec.RestartPolicy = tt.policy
				p.Spec.Containers = make([]v1.Container, max(len(tt.ctrs), 2))
			})
			if tt.name != "a container without status" {
				pod.Spec.Containers = pod.Spec.Containers[:len(tt.ctrs)]
			}
			if got := podPhase(pod, tt.init, tt.ctrs); got != tt.want {
				t.Errorf("phase %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPodConditions(t *testing.T) {
	earlier := metav1.NewTime(t0)
	pod := testPod("c", func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "init"}}
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "side"})
		p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}}
		p.Status.Conditions = []v1.PodCondition{
			{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: earlier},
			{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, LastTransitionTime: earlier},
			{Type: "example.com/lb", Status: v1.ConditionFalse, LastTransitionTime: earlier},
		}
		p.Status.PodIP, p.Status.PodIPs = "10.244.0.1", []v1.PodIP{{IP: "10.244.0.1"}}
	})
	rt := readySandbox(ctr("app", 0, running, 0), ctr("side", 0, running, 0), ctr("init", 0, exited, 0))
	in := inputs(pod, rt, nil)
	in.ready = func(c *v1.Container, _ string) bool { return c.Name == "app" }
	s := computeStatus(in)
	now := metav1.NewTime(in.now)
	want := []v1.PodCondition{
		{Type: "example.com/lb", Status: v1.ConditionFalse, LastTransitionTime: earlier},
		{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, LastTransitionTime: earlier},
		{Type: v1.PodInitialized, Status: v1.ConditionTrue, LastTransitionTime: now},
		{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [side]", LastTransitionTime: now},
		{Type: v1.ContainersReady, Status: v1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [side]", LastTransitionTime: now},
		{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: earlier},
	}
	if diff := cmp.Diff(want, s.Conditions); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if s.PodIP != "10.244.0.9" || s.HostIP != hostIP || s.StartTime == nil || !s.StartTime.Equal(&now) {
		t.Errorf("addresses and start: %s %s %v", s.PodIP, s.HostIP, s.StartTime)
	}

	// All ready, but the readiness gate is not.
	in.ready = func(*v1.Container, string) bool { return true }
	s = computeStatus(in)
	for _, c := range s.Conditions {
		if c.Type == v1.PodReady && (c.Status != v1.ConditionFalse || c.Reason != "ReadinessGatesNotReady") {
			t.Errorf("Ready with an unready gate: %+v", c)
		}
		if c.Type == v1.ContainersReady && c.Status != v1.ConditionTrue {
			t.Errorf("ContainersReady: %+v", c)
		}
	}

	// A stopped sandbox keeps the last address; a terminal phase stays.
	pod.Status.Phase = v1.PodFailed
	stopped := readySandbox(ctr("app", 0, running, 0))
	stopped.sandboxes[0].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	s = computeStatus(inputs(pod, stopped, nil))
	if s.Phase != v1.PodFailed || s.PodIP != "10.244.0.1" {
		t.Errorf("phase %s podIP %s", s.Phase, s.PodIP)
	}
}
