package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/exec"

	"wharf.dev/wharf/internal/testwait"
)

// scripted answers exec probes from a per-command queue of results
// (the last one repeats) and counts the calls.
type scripted struct {
	mu      sync.Mutex
	results map[string][]bool
	calls   map[string]int
}

func (s *scripted) exec(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[cmd[0]]++
	q := s.results[cmd[0]]
	ok := q[0]
	if len(q) > 1 {
		s.results[cmd[0]] = q[1:]
	}
	if ok {
		return nil, nil, nil
	}
	return nil, nil, exec.CodeExitError{Err: errors.New("failed"), Code: 1}
}

func (s *scripted) count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[cmd]
}

func probeOf(cmd string, delay, success, failure int32) *v1.Probe {
	return &v1.Probe{
		ProbeHandler:        v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{cmd}}},
		InitialDelaySeconds: delay, PeriodSeconds: 1, SuccessThreshold: success, FailureThreshold: failure,
	}
}

type fixture struct {
	t       *testing.T
	m       *Manager
	clock   *testclock.FakeClock
	exec    *scripted
	changes chan types.UID
}

func newFixture(t *testing.T, results map[string][]bool) *fixture {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{t: t, clock: testclock.NewFakeClock(time.Unix(1000, 0)), exec: &scripted{results: results, calls: map[string]int{}}, changes: make(chan types.UID, 100)}
	f.m = NewManager(ctx, f.clock, &Runner{Exec: f.exec.exec, Clock: f.clock}, slog.New(slog.DiscardHandler),
		func(uid types.UID) { f.changes <- uid }, nil)
	t.Cleanup(func() { cancel(); f.m.Wait() })
	return f
}

// tick steps one period and waits for cmd to be probed again.
func (f *fixture) tick(cmd string) {
	f.t.Helper()
	n := f.exec.count(cmd)
	f.clock.Step(time.Second)
	f.waitCalls(cmd, n+1)
}

func (f *fixture) waitCalls(cmd string, n int) {
	f.t.Helper()
	testwait.For(f.t, fmt.Sprintf("%d probes by %s", n, cmd), func() (bool, string) {
		got := f.exec.count(cmd)
		return got >= n, fmt.Sprintf("%d probes", got)
	})
}

// waitResult waits for a verdict; verdicts are set right after the exec
// returns, so they need a short wait too.
func (f *fixture) waitResult(kind Kind, want Result) {
	f.t.Helper()
	testwait.For(f.t, fmt.Sprintf("%s verdict %v", kind, want), func() (bool, string) {
		got := f.m.Result("uid1", "app", "c1", kind)
		return got == want, fmt.Sprint(got)
	})
}

func testPod(c v1.Container) *v1.Pod {
	c.Name = "app"
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid1"}, Spec: v1.PodSpec{Containers: []v1.Container{c}}}
}

func TestThresholds(t *testing.T) {
	f := newFixture(t, map[string][]bool{"ready": {true, true, false, false, true}})
	f.m.Sync(testPod(v1.Container{ReadinessProbe: probeOf("ready", 0, 2, 2)}), map[string]Running{"app": {ID: "c1"}})
	if got := f.m.Result("uid1", "app", "c1", Readiness); got != Failure {
		t.Fatalf("initial readiness %v, want failure", got)
	}
	f.waitCalls("ready", 1) // one success: below the threshold of 2
	if got := f.m.Result("uid1", "app", "c1", Readiness); got != Failure {
		t.Fatalf("ready after one success")
	}
	f.tick("ready")
	f.waitResult(Readiness, Success)
	f.tick("ready") // one failure: still ready
	if got := f.m.Result("uid1", "app", "c1", Readiness); got != Success {
		t.Fatalf("unready after one failure")
	}
	f.tick("ready")
	f.waitResult(Readiness, Failure)
	if len(f.changes) != 2 {
		t.Errorf("%d change notifications, want 2", len(f.changes))
	}
}

// stepUntil steps the clock a period at a time until cond holds. Only
// the fake clock decides when probes run; the real-time wait merely lets
// the workers catch up.
func (f *fixture) stepUntil(what string, cond func() bool) {
	f.t.Helper()
	for range 50 {
		f.clock.Step(time.Second)
		// Poll for a while before the next step. A missed poll only
		// costs an extra step; no assertion counts steps, so this sleep
		// only paces the poll.
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) {
			if cond() {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	f.t.Fatalf("never: %s", what)
}

func TestInitialDelayAndStartupGating(t *testing.T) {
	f := newFixture(t, map[string][]bool{"started": {false, false, false, false, false, true}, "alive": {true}})
	pod := testPod(v1.Container{StartupProbe: probeOf("started", 2, 1, 10), LivenessProbe: probeOf("alive", 0, 1, 1)})
	f.m.Sync(pod, map[string]Running{"app": {ID: "c1"}})
	f.clock.Step(time.Second)
	if n := f.exec.count("started"); n != 0 {
		t.Fatalf("probed %d times within the initial delay", n)
	}
	f.stepUntil("two startup failures", func() bool { return f.exec.count("started") >= 2 })
	// Startup needs a sixth probe to succeed: until then liveness waits.
	if n := f.exec.count("alive"); n != 0 {
		t.Fatalf("liveness ran %d times before the startup probe succeeded", n)
	}
	f.stepUntil("started", func() bool { return f.m.Result("uid1", "app", "c1", Startup) == Success })
	f.stepUntil("liveness probed", func() bool { return f.exec.count("alive") > 0 })
	f.waitResult(Liveness, Success)
	started := f.exec.count("started")
	alive := f.exec.count("alive")
	f.stepUntil("liveness probed twice more", func() bool { return f.exec.count("alive") >= alive+2 })
	if n := f.exec.count("started"); n != started {
		t.Errorf("startup probed %d more times after success", n-started)
	}

	// A new container gets new workers and initial verdicts.
	f.m.Sync(pod, map[string]Running{"app": {ID: "c2"}})
	if got := f.m.Result("uid1", "app", "c2", Startup); got != Unknown {
		t.Errorf("startup of a new container: %v", got)
	}
	f.m.Remove("uid1")
	if got := f.m.Result("uid1", "app", "c1", Liveness); got != Success {
		t.Errorf("liveness after removal: %v (want the initial value)", got)
	}
}

func TestLivenessFailureHolds(t *testing.T) {
	f := newFixture(t, map[string][]bool{"alive": {false}})
	f.m.Sync(testPod(v1.Container{LivenessProbe: probeOf("alive", 0, 1, 1)}), map[string]Running{"app": {ID: "c1"}})
	f.waitResult(Liveness, Failure)
	n := f.exec.count("alive")
	f.clock.Step(time.Second)
	f.clock.Step(time.Second)
	if f.exec.count("alive") != n {
		t.Error("kept probing a container that failed liveness")
	}
}
