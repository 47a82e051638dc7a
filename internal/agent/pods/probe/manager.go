package probe

import (
	"context"
	"log/slog"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Kind names a probe.
type Kind string

// The probes a container may have.
const (
	Startup   Kind = "Startup"
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
)

// initial is a probe's verdict before it has run: a container is alive
// until proven otherwise, but not ready, and not started.
func (k Kind) initial() Result {
	switch k {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	}
	return Unknown
}

// Running is a container whose probes should run.
type Running struct {
	ID    string
	PodIP string
}

// UnhealthyFunc is told of each failed probe, for the pod's events.
type UnhealthyFunc func(pod *v1.Pod, container string, kind Kind, output string)

type key struct {
	uid       types.UID
	container string
	kind      Kind
}

type verdict struct {
	containerID string
	result      Result
}

// Manager runs one worker per probe of each running container and keeps
// their verdicts.
type Manager struct {
	ctx       context.Context
	clock     clock.WithTicker
	runner    *Runner
	log       *slog.Logger
	onChange  func(types.UID)
	unhealthy UnhealthyFunc

	mu       sync.Mutex
	workers  map[key]*worker
	verdicts map[key]verdict
	wg       sync.WaitGroup
}

// NewManager returns a Manager whose workers run until ctx is done.
// onChange is called (from a worker's goroutine) whenever a verdict
// changes, so the pod's worker can act on it.
func NewManager(ctx context.Context, clk clock.WithTicker, runner *Runner, log *slog.Logger, onChange func(types.UID), unhealthy UnhealthyFunc) *Manager {
	return &Manager{
		ctx: ctx, clock: clk, runner: runner, log: log,
		onChange: onChange, unhealthy: unhealthy,
		workers:  map[key]*worker{},
		verdicts: map[key]verdict{},
	}
}

// Sync makes the workers of pod match its running containers: each probe
// of a running container has a worker for that container's ID; all other
// workers of the pod stop.
func (m *Manager) Sync(pod *v1.Pod, running map[string]Running) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[key]bool{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		r, ok := running[c.Name]
		if !ok {
			continue
		}
		for kind, spec := range map[Kind]*v1.Probe{Startup: c.StartupProbe, Liveness: c.LivenessProbe, Readiness: c.ReadinessProbe} {
			if spec == nil {
				continue
			}
			k := key{pod.UID, c.Name, kind}
			want[k] = true
			if w, ok := m.workers[k]; ok && w.target.ContainerID == r.ID {
				continue
			}
			if w, ok := m.workers[k]; ok {
				close(w.stop)
			}
			m.verdicts[k] = verdict{r.ID, kind.initial()}
			w := newWorker(m, k, pod, c, spec, Target{PodIP: r.PodIP, ContainerID: r.ID, Container: c})
			m.workers[k] = w
			m.wg.Add(1)
			go w.run()
		}
	}
	for k, w := range m.workers {
		if k.uid == pod.UID && !want[k] {
			close(w.stop)
			delete(m.workers, k)
			delete(m.verdicts, k)
		}
	}
}

// Remove stops the pod's workers and forgets their verdicts.
func (m *Manager) Remove(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, w := range m.workers {
		if k.uid == uid {
			close(w.stop)
			delete(m.workers, k)
		}
	}
	for k := range m.verdicts {
		if k.uid == uid {
			delete(m.verdicts, k)
		}
	}
}

// Result is the verdict of a container's probe for container ID id; a
// container the workers have not seen yet gets the probe's initial value.
func (m *Manager) Result(uid types.UID, container, id string, kind Kind) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.verdicts[key{uid, container, kind}]; ok && v.containerID == id {
		return v.result
	}
	return kind.initial()
}

// Wait waits for the workers to end (after the context is done).
func (m *Manager) Wait() { m.wg.Wait() }

// set records a verdict if it is still for the worker's container and
// reports whether it changed.
func (m *Manager) set(k key, id string, r Result) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.verdicts[k]
	if !ok || v.containerID != id || v.result == r {
		return false
	}
	m.verdicts[k] = verdict{id, r}
	return true
}
