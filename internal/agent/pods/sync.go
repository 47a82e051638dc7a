package pods

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"

	"wharf.dev/wharf/internal/agent/pods/fieldpath"
	"wharf.dev/wharf/internal/agent/pods/probe"
	"wharf.dev/wharf/internal/agent/pods/volume"
)

// syncPod brings one pod's runtime state to what the API asks for.
func (m *Manager) syncPod(ctx context.Context, w *podWorker) (syncResult, error) {
	pod := m.pod(w.uid)
	rt, err := m.reader.read(ctx, w.uid)
	if err != nil {
		// Nothing is decided on a partial view: running containers stay.
		return syncResult{}, fmt.Errorf("pod %s: %w", w.uid, err)
	}
	switch {
	case pod == nil:
		return m.cleanupGone(ctx, w.uid, rt)
	case pod.DeletionTimestamp != nil:
		return m.terminate(ctx, w, pod, rt)
	case terminal(m.statuses.current(pod).Phase):
		return m.syncFinished(ctx, pod, rt)
	}
	return m.syncRunning(ctx, pod, rt)
}

// syncRunning creates the sandbox, runs the init containers, starts and
// restarts the containers, and reports the status.
func (m *Manager) syncRunning(ctx context.Context, pod *v1.Pod, rt *podRuntime) (syncResult, error) {
	var requeue time.Duration
	later := func(d time.Duration) {
		if d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}
	vols, volErr := m.volumes.Setup(ctx, pod, m.allocatable())
	if volErr != nil {
		m.podEvent(pod, v1.EventTypeWarning, eventFailedMount, "MountVolume.SetUp failed: %v", volErr)
		if errors.Is(volErr, volume.ErrNotBound) {
			later(claimResync) // the binding comes within moments
		}
		later(pendingResync)
	}

	// A pod that finished stays down, even if writing its final status
	// failed last time (a dead sandbox would otherwise restart it).
	if early := m.computeStatus(pod, rt); terminal(early.Phase) {
		if err := m.stopRemaining(ctx, pod, rt); err != nil {
			return syncResult{}, err
		}
		return syncResult{}, m.writeStatus(ctx, pod, early)
	}

	if msg, ok := m.evictions.take(pod.UID); ok {
		return m.evict(ctx, pod, rt, msg)
	}
	if left, ok := m.activeDeadline(pod); ok && left <= 0 {
		return m.failDeadline(ctx, pod, rt)
	} else if ok {
		later(left)
	}

	actions := computeActions(pod, rt, m.unhealthyCheck(pod))
	keepCounting(actions.start, rt, m.statuses.current(pod))
	for _, k := range actions.kill {
		if err := m.killContainer(ctx, pod, k.c, m.podGrace(pod, k.c.name), k.message); err != nil {
			return syncResult{}, err
		}
	}
	changed := len(actions.kill) > 0
	if actions.createSandbox && volErr == nil {
		if len(rt.sandboxes) > 0 {
			m.podEvent(pod, v1.EventTypeNormal, eventSandboxChanged, "Pod sandbox changed, it will be killed and re-created.")
			if err := m.stopSandboxes(ctx, rt); err != nil {
				return syncResult{}, err
			}
		}
		if err := m.createSandbox(ctx, pod, actions.sandboxAttempt); err != nil {
			m.podEvent(pod, v1.EventTypeWarning, eventSandboxFailed, "Failed to create pod sandbox: %v", err)
			return syncResult{}, m.reportAfter(ctx, pod, err)
		}
		var err error
		if rt, err = m.reader.read(ctx, pod.UID); err != nil {
			return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
		}
		// Report the sandbox (and its IP) before slow pulls; with the
		// images present the containers start at once, and one status
		// write (an API round trip on every pod's start-up path) does.
		if m.pullsAhead(ctx, actions.start) {
			if err := m.report(ctx, pod, rt); err != nil {
				return syncResult{}, err
			}
		}
	}

	if volErr == nil && rt.sandboxReady() {
		sb := m.sandboxRef(pod, rt)
		for _, s := range actions.start {
			started, wait := m.startContainer(ctx, pod, sb, s, vols)
			changed = changed || started
			later(wait)
		}
	}
	if changed {
		var err error
		if rt, err = m.reader.read(ctx, pod.UID); err != nil {
			return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
		}
	}
	status := m.computeStatus(pod, rt)
	if terminal(status.Phase) {
		// Done for good: free the network and stop probing, keep the
		// containers for their logs.
		if err := m.stopRemaining(ctx, pod, rt); err != nil {
			return syncResult{}, err
		}
	} else {
		m.probes.Sync(pod, m.runningForProbes(pod, rt))
		if pendingStatus(status) {
			later(pendingResync)
		}
	}
	if err := m.writeStatus(ctx, pod, status); err != nil {
		return syncResult{}, err
	}
	if err := m.gcContainers(ctx, pod, rt); err != nil {
		m.log.Warn("container garbage collection", "pod", podRef(pod), "err", err)
	}
	return syncResult{requeue: requeue}, nil
}

// syncFinished keeps a pod that reached Succeeded or Failed down: nothing
// runs or restarts, its last status stays.
func (m *Manager) syncFinished(ctx context.Context, pod *v1.Pod, rt *podRuntime) (syncResult, error) {
	for _, c := range rt.containers {
		if c.running() {
			if err := m.killContainer(ctx, pod, c, m.podGrace(pod, c.name), "Stopping container "+c.name); err != nil {
				return syncResult{}, err
			}
		}
	}
	if err := m.stopRemaining(ctx, pod, rt); err != nil {
		return syncResult{}, err
	}
	if err := m.report(ctx, pod, rt); err != nil {
		return syncResult{}, err
	}
	return syncResult{}, m.gcContainers(ctx, pod, rt)
}

// stopRemaining stops the pod's sandboxes and probes.
func (m *Manager) stopRemaining(ctx context.Context, pod *v1.Pod, rt *podRuntime) error {
	m.probes.Remove(pod.UID)
	return m.stopSandboxes(ctx, rt)
}

// report computes and writes the pod's status from a fresh read.
func (m *Manager) report(ctx context.Context, pod *v1.Pod, rt *podRuntime) error {
	return m.writeStatus(ctx, pod, m.computeStatus(pod, rt))
}

// reportAfter writes the status after a failed step and returns the step's
// error.
func (m *Manager) reportAfter(ctx context.Context, pod *v1.Pod, stepErr error) error {
	if rt, err := m.reader.read(ctx, pod.UID); err == nil {
		_ = m.report(ctx, pod, rt)
	}
	return fmt.Errorf("pod %q: %w", podRef(pod), stepErr)
}

// keepCounting numbers containers the runtime lost (a node that lost its
// containerd state) after the restart count already reported, so that
// restart counts never go back.
func keepCounting(starts []startAction, rt *podRuntime, old v1.PodStatus) {
	for i := range starts {
		s := &starts[i]
		if rt.latest(s.spec.Name) != nil {
			continue
		}
		statuses := old.ContainerStatuses
		if s.init {
			statuses = old.InitContainerStatuses
		}
		for _, st := range statuses {
			if st.Name == s.spec.Name && st.ContainerID != "" {
				s.attempt = uint32(st.RestartCount) + 1
			}
		}
	}
}

// pendingStatus reports whether a container waits for something, so the
// pod is looked at again soon even without events.
func pendingStatus(s v1.PodStatus) bool {
	for _, list := range [][]v1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
		for _, c := range list {
			if c.State.Waiting != nil {
				return true
			}
		}
	}
	return false
}

// computeStatus gathers the inputs of the pod's status.
func (m *Manager) computeStatus(pod *v1.Pod, rt *podRuntime) v1.PodStatus {
	return computeStatus(statusInputs{
		pod:     pod,
		old:     m.statuses.current(pod),
		rt:      rt,
		reasons: m.reasons.pod(pod.UID),
		ready: func(spec *v1.Container, id string) bool {
			return spec.ReadinessProbe == nil || m.probes.Result(pod.UID, spec.Name, id, probe.Readiness) == probe.Success
		},
		started: func(spec *v1.Container, id string) bool {
			return spec.StartupProbe == nil || m.probes.Result(pod.UID, spec.Name, id, probe.Startup) == probe.Success
		},
		message:     m.terminationMessage(pod),
		hostIPs:     m.hostIPs(),
		runtimeName: m.containerIDPrefix(),
		now:         m.clock.Now(),
	})
}

// unhealthyCheck tells computeActions which running containers failed
// their liveness or startup probe.
func (m *Manager) unhealthyCheck(pod *v1.Pod) unhealthyFunc {
	return func(name, id string) (string, bool) {
		spec := findContainer(pod, name)
		if spec == nil {
			return "", false
		}
		if spec.StartupProbe != nil && m.probes.Result(pod.UID, name, id, probe.Startup) == probe.Failure {
			return fmt.Sprintf("Container %s failed startup probe, will be restarted", name), true
		}
		if spec.LivenessProbe != nil && m.probes.Result(pod.UID, name, id, probe.Liveness) == probe.Failure {
			return fmt.Sprintf("Container %s failed liveness probe, will be restarted", name), true
		}
		return "", false
	}
}

// runningForProbes lists the pod's running regular containers.
func (m *Manager) runningForProbes(pod *v1.Pod, rt *podRuntime) map[string]probe.Running {
	running := map[string]probe.Running{}
	ip := ""
	if ips := m.podAddresses(pod, rt).PodIPs; len(ips) > 0 {
		ip = ips[0]
	}
	for _, c := range pod.Spec.Containers {
		if cur := rt.current(c.Name); cur != nil && cur.running() {
			running[c.Name] = probe.Running{ID: cur.id, PodIP: ip}
		}
	}
	return running
}

// podAddresses are the pod's and node's IPs for the downward API.
func (m *Manager) podAddresses(pod *v1.Pod, rt *podRuntime) fieldpath.Addresses {
	addr := fieldpath.Addresses{PodIPs: rt.podIPs(), HostIPs: m.hostIPs()}
	if pod.Spec.HostNetwork {
		addr.PodIPs = addr.HostIPs
	}
	return addr
}
