package pods

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/exec"
)

var errExit1 = exec.CodeExitError{Err: errExitText("exit status 1"), Code: 1}

type errExitText string

func (e errExitText) Error() string { return string(e) }

func execProbe(cmd string, failures int32) *v1.Probe {
	return &v1.Probe{
		ProbeHandler:     v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{cmd}}},
		PeriodSeconds:    1,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

// probeOnce steps the clock one period and waits for cmd to run again.
func (h *harness) probeOnce(cmd string) {
	h.t.Helper()
	n := h.rt.execCount(cmd)
	h.clock.Step(1e9)
	h.waitFor(cmd+" probed", func() bool { return h.rt.execCount(cmd) > n })
}

func TestLivenessFailure(t *testing.T) {
	tests := []struct {
		policy    v1.RestartPolicy
		restarted bool
		phase     v1.PodPhase
	}{
		{v1.RestartPolicyAlways, true, v1.PodRunning},
		{v1.RestartPolicyOnFailure, true, v1.PodRunning},
		{v1.RestartPolicyNever, false, v1.PodFailed},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			h := newHarness(t)
			h.start()
			pod := testPod("live", func(p *v1.Pod) {
				p.Spec.RestartPolicy = tt.policy
				p.Spec.Containers[0].LivenessProbe = execProbe("alive", 2)
			})
			h.createPod(pod)
			h.waitRunning(pod.UID, "app", 0)
			h.waitPod("live", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
			h.waitFor("first probe", func() bool { return h.rt.execCount("alive") == 1 })

			h.rt.setExec("alive", errExit1)
			h.probeOnce("alive") // one failure is below the threshold
			if st := h.containerState(pod.UID, "app", 0); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("killed after one failure (state %v)", st)
			}
			h.probeOnce("alive")
			h.waitFor("container killed", func() bool {
				return h.containerState(pod.UID, "app", 0) == runtimeapi.ContainerState_CONTAINER_EXITED
			})
			if tt.restarted {
				h.waitRunning(pod.UID, "app", 1)
			}
			p := h.waitPod("live", "phase "+string(tt.phase), func(p *v1.Pod) bool { return p.Status.Phase == tt.phase })
			if !h.events.has("Killing: Container app failed liveness probe, will be restarted") {
				t.Errorf("no Killing event; events: %v", h.events.list)
			}
			if !tt.restarted {
				if h.container(pod.UID, "app", 1) != nil {
					t.Error("restarted despite restartPolicy Never")
				}
				if s := containerStatus(p, "app"); s.State.Terminated == nil || s.State.Terminated.ExitCode != 137 {
					t.Errorf("state %+v, want terminated with 137", s.State)
				}
			}
		})
	}
}

func TestReadinessTogglesReady(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("ready", func(p *v1.Pod) { p.Spec.Containers[0].ReadinessProbe = execProbe("ready", 1) })
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	isReady := func(want bool) func(*v1.Pod) bool {
		status := v1.ConditionFalse
		if want {
			status = v1.ConditionTrue
		}
		return func(p *v1.Pod) bool {
			s := containerStatus(p, "app")
			return s != nil && s.Ready == want && condition(p, v1.PodReady) == status && condition(p, v1.ContainersReady) == status
		}
	}
	h.waitPod("ready", "Ready", isReady(true))

	h.rt.setExec("ready", errExit1)
	h.probeOnce("ready")
	p := h.waitPod("ready", "not Ready", isReady(false))
	if p.Status.Phase != v1.PodRunning {
		t.Errorf("phase %s, want Running", p.Status.Phase)
	}
	if h.calls("StopContainer") != 0 {
		t.Error("a readiness failure stopped the container")
	}

	h.rt.setExec("ready", nil)
	h.probeOnce("ready")
	h.waitPod("ready", "Ready again", isReady(true))
}

func TestStartupProbeGatesLiveness(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("slow", func(p *v1.Pod) {
		p.Spec.Containers[0].StartupProbe = execProbe("started", 30)
		p.Spec.Containers[0].LivenessProbe = execProbe("alive", 1)
	})
	h.rt.setExec("started", errExit1)
	h.rt.setExec("alive", errExit1)
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	for range 3 {
		h.probeOnce("started")
	}
	if n := h.rt.execCount("alive"); n != 0 {
		t.Fatalf("liveness ran %d times before the startup probe succeeded", n)
	}
	p := h.getPod("slow")
	if s := containerStatus(p, "app"); s == nil || s.Started == nil || *s.Started || s.Ready {
		t.Fatalf("status before startup: %+v", s)
	}

	h.rt.setExec("started", nil)
	h.rt.setExec("alive", nil)
	h.probeOnce("started")
	h.waitPod("slow", "started", func(p *v1.Pod) bool {
		s := containerStatus(p, "app")
		return s != nil && s.Started != nil && *s.Started && s.Ready
	})
	// Now liveness runs; one failure is its threshold.
	h.rt.setExec("alive", errExit1)
	h.probeOnce("alive")
	h.waitFor("killed and replaced", func() bool {
		return h.containerState(pod.UID, "app", 0) == runtimeapi.ContainerState_CONTAINER_EXITED && h.container(pod.UID, "app", 1) != nil
	})
}
