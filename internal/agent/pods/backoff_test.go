package pods

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	testclock "k8s.io/utils/clock/testing"
)

func TestBackOffProgression(t *testing.T) {
	type step struct {
		cause string
		reset bool
		// advance is how far the clock moves before the failure.
		advance time.Duration
	}
	tests := []struct {
		name           string
		immediateFirst bool
		steps          []step
		want           []time.Duration // delay after each step
	}{
		{
			name:           "container restarts: immediate, then doubling to the cap",
			immediateFirst: true,
			steps:          []step{{cause: "a"}, {cause: "b"}, {cause: "c"}, {cause: "d"}, {cause: "e"}, {cause: "f"}, {cause: "g"}},
			want:           []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second},
		},
		{
			name:  "image pulls: the first retry already waits",
			steps: []step{{cause: "a"}, {cause: "b"}, {cause: "c"}},
			want:  []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:           "the same failure seen again counts once",
			immediateFirst: true,
			steps:          []step{{cause: "a"}, {cause: "b"}, {cause: "b"}, {cause: "a"}, {cause: "c"}},
			want:           []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second},
		},
		{
			name:           "a healthy run resets the progression",
			immediateFirst: true,
			steps:          []step{{cause: "a"}, {cause: "b"}, {cause: "c"}, {cause: "d", reset: true}, {cause: "e"}},
			want:           []time.Duration{0, time.Second, 2 * time.Second, 0, time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testclock.NewFakeClock(time.Unix(0, 0))
			b := newBackOff(clk, time.Second, 10*time.Second, tt.immediateFirst)
			var got []time.Duration
			for _, s := range tt.steps {
				clk.Step(s.advance)
				_, delay := b.failed("k", s.cause, s.reset)
				got = append(got, delay)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackOffRemaining(t *testing.T) {
	clk := testclock.NewFakeClock(time.Unix(0, 0))
	b := newBackOff(clk, time.Second, time.Minute, false)
	if wait, _ := b.failed("k", "a", false); wait != time.Second {
		t.Fatalf("wait = %v, want 1s", wait)
	}
	clk.Step(400 * time.Millisecond)
	if got := b.remaining("k"); got != 600*time.Millisecond {
		t.Errorf("remaining = %v, want 600ms", got)
	}
	clk.Step(time.Second)
	if got := b.remaining("k"); got != 0 {
		t.Errorf("remaining = %v, want 0", got)
	}
	b.forgetPod("k")
	if got := b.remaining("unknown"); got != 0 {
		t.Errorf("remaining of an unknown key = %v", got)
	}
}

// TestRestartBackOff: the first restart comes with the relist that sees
// the exit (within a second), later ones wait 1s, 2s, 4s, shown as
// CrashLoopBackOff.
func TestRestartBackOff(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("crash")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)

	h.exit(pod.UID, "app", 0, 1, time.Second)
	h.clock.Step(time.Second) // one relist period
	h.waitRunning(pod.UID, "app", 1)

	for _, tc := range []struct {
		attempt uint32
		wait    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}} {
		h.exit(pod.UID, "app", tc.attempt, 1, time.Second)
		h.clock.Step(time.Second) // the relist sees the exit
		msg := fmt.Sprintf("back-off %s restarting failed container=app pod=crash_default(uid-crash)", tc.wait)
		p := h.waitPod("crash", "CrashLoopBackOff "+tc.wait.String(), func(p *v1.Pod) bool {
			s := containerStatus(p, "app")
			return s.State.Waiting != nil && s.State.Waiting.Reason == reasonCrashLoopBackOff && s.State.Waiting.Message == msg
		})
		s := containerStatus(p, "app")
		if s.RestartCount != int32(tc.attempt) || s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 1 {
			t.Errorf("attempt %d: restartCount %d lastState %+v", tc.attempt, s.RestartCount, s.LastTerminationState)
		}
		if p.Status.Phase != v1.PodRunning {
			t.Errorf("phase %s while restarting, want Running", p.Status.Phase)
		}
		if tc.wait > time.Second {
			h.clock.Step(tc.wait - time.Second)
			if h.container(pod.UID, "app", tc.attempt+1) != nil {
				t.Fatalf("attempt %d started before its back-off of %s", tc.attempt+1, tc.wait)
			}
			h.clock.Step(time.Second)
		} else {
			h.clock.Step(tc.wait)
		}
		h.waitRunning(pod.UID, "app", tc.attempt+1)
	}
	// Only the current and the previous container are kept.
	h.waitFor("old containers removed", func() bool { return h.container(pod.UID, "app", 0) == nil && h.container(pod.UID, "app", 1) == nil })
	if h.container(pod.UID, "app", 3) == nil {
		t.Error("the previous container (for logs --previous) was removed")
	}
}

// TestRestartBackOffResetsAfterHealthyRun: a container that ran ten
// minutes restarts at once.
func TestRestartBackOffResetsAfterHealthyRun(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("steady")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	h.exit(pod.UID, "app", 0, 1, time.Second)
	h.clock.Step(time.Second)
	h.waitRunning(pod.UID, "app", 1)
	h.exit(pod.UID, "app", 1, 1, 11*time.Minute)
	h.clock.Step(time.Second)
	h.waitRunning(pod.UID, "app", 2)
}
