package probe

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// worker probes one container periodically.
type worker struct {
	m      *Manager
	key    key
	pod    *v1.Pod
	spec   *v1.Probe
	target Target
	// hasStartup holds back liveness and readiness until startup succeeds.
	hasStartup bool

	stop   chan struct{}
	ticker clock.Ticker
	start  time.Time

	lastResult Result
	resultRun  int
	// onHold stops probing after a liveness or startup failure until the
	// container is replaced (a new worker).
	onHold bool
}

func newWorker(m *Manager, k key, pod *v1.Pod, c *v1.Container, spec *v1.Probe, t Target) *worker {
	period := time.Duration(max(spec.PeriodSeconds, 1)) * time.Second
	// The ticker exists before Sync returns, so a clock step right after
	// is never missed.
	return &worker{
		m: m, key: k, pod: pod, spec: spec, target: t,
		hasStartup: c.StartupProbe != nil && k.kind != Startup,
		stop:       make(chan struct{}),
		ticker:     m.clock.NewTicker(period),
		start:      m.clock.Now(),
	}
}

func (w *worker) run() {
	defer w.m.wg.Done()
	defer w.ticker.Stop()
	for {
		w.probe()
		select {
		case <-w.stop:
			return
		case <-w.m.ctx.Done():
			return
		case <-w.ticker.C():
		}
	}
}

// probe runs the probe once if it is due, and records the verdict once a
// threshold of equal results is reached.
func (w *worker) probe() {
	m, k, id := w.m, w.key, w.target.ContainerID
	if w.onHold {
		return
	}
	if w.hasStartup && m.Result(k.uid, k.container, id, Startup) != Success {
		return
	}
	if k.kind == Startup && m.Result(k.uid, k.container, id, Startup) == Success {
		return
	}
	if m.clock.Since(w.start) < time.Duration(w.spec.InitialDelaySeconds)*time.Second {
		return
	}
	select {
	case <-w.stop:
		return
	default:
	}
	result, output := m.runner.Probe(m.ctx, w.spec, w.target)
	if m.ctx.Err() != nil {
		return
	}
	if result == Unknown {
		result = Failure
	}
	if result == Failure && m.unhealthy != nil {
		m.unhealthy(w.pod, k.container, k.kind, output)
	}
	if result == w.lastResult {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = result, 1
	}
	if (result == Failure && w.resultRun < int(max(w.spec.FailureThreshold, 1))) ||
		(result == Success && w.resultRun < int(max(w.spec.SuccessThreshold, 1))) {
		return
	}
	if m.set(k, id, result) {
		m.log.Debug("probe verdict changed", "pod", w.pod.Namespace+"/"+w.pod.Name, "container", k.container,
			"probe", string(k.kind), "result", result.String(), "output", output)
		m.onChange(k.uid)
	}
	if result == Failure && (k.kind == Liveness || k.kind == Startup) {
		w.onHold, w.resultRun = true, 0
	}
}
