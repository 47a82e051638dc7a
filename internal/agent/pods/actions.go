package pods

import (
	v1 "k8s.io/api/core/v1"
)

// podActions is what one sync does to a pod that is to keep running,
// decided from its spec and runtime state alone (the kubelet's
// computePodActions). Back-off is applied when the starts are carried out.
type podActions struct {
	// createSandbox replaces a missing or dead sandbox; everything still
	// running is killed first and the pod starts over in the new one.
	createSandbox  bool
	sandboxAttempt uint32
	// kill lists running containers to stop, with why.
	kill []killAction
	// start lists containers to (re)start in order: one init container at
	// a time, or the regular containers.
	start []startAction
}

type killAction struct {
	c       *container
	message string
}

type startAction struct {
	spec    *v1.Container
	init    bool
	attempt uint32
	// prev is the exited (or never started) container this one replaces;
	// its failure is what the restart back-off counts.
	prev *container
}

// unhealthyFunc reports whether a running container failed its liveness
// or startup probe, and a message saying which.
type unhealthyFunc func(name, id string) (string, bool)

// computeActions decides what to do to pod given its runtime state.
func computeActions(pod *v1.Pod, rt *podRuntime, unhealthy unhealthyFunc) podActions {
	var a podActions
	if sandboxNeeded(pod, rt) {
		for _, c := range rt.containers {
			if c.running() {
				a.kill = append(a.kill, killAction{c, "pod sandbox changed, it will be killed and re-created"})
			}
		}
		if s := rt.sandbox(); s != nil {
			a.sandboxAttempt = s.GetMetadata().GetAttempt() + 1
			// A pod that must not restart stays down once its containers ran.
			if pod.Spec.RestartPolicy == v1.RestartPolicyNever && len(rt.containers) > 0 {
				return a
			}
		}
		a.createSandbox = true
		if len(pod.Spec.InitContainers) > 0 {
			a.start = append(a.start, newStart(rt, &pod.Spec.InitContainers[0], true, rt.latest(pod.Spec.InitContainers[0].Name)))
			return a
		}
		for i := range pod.Spec.Containers {
			spec := &pod.Spec.Containers[i]
			a.start = append(a.start, newStart(rt, spec, false, rt.latest(spec.Name)))
		}
		return a
	}

	if !initialized(pod, rt) {
		if s, ok := nextInit(pod, rt); ok {
			a.start = append(a.start, s)
		}
		return a
	}

	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := rt.current(spec.Name)
		switch {
		case c == nil:
			a.start = append(a.start, newStart(rt, spec, false, nil))
		case c.running():
			msg, kill := unhealthy(spec.Name, c.id)
			restart := pod.Spec.RestartPolicy != v1.RestartPolicyNever
			if !kill {
				if h := c.annotations[annotationHash]; h != "" && h != specHash(spec) {
					msg, kill, restart = "Container spec hash changed, will be restarted", true, true
				}
			}
			if kill {
				a.kill = append(a.kill, killAction{c, msg})
				if restart {
					a.start = append(a.start, newStart(rt, spec, false, c))
				}
			}
		case c.done():
			if shouldRestart(pod.Spec.RestartPolicy, c.exitCode) {
				a.start = append(a.start, newStart(rt, spec, false, c))
			}
		default:
			// Created but never started (or unknown): start a new one.
			a.start = append(a.start, newStart(rt, spec, false, c))
		}
	}
	return a
}

// sandboxNeeded reports whether the pod needs a (new) sandbox: none, or
// the newest is not ready or lost its network.
func sandboxNeeded(pod *v1.Pod, rt *podRuntime) bool {
	if !rt.sandboxReady() {
		return true
	}
	return !pod.Spec.HostNetwork && len(rt.podIPs()) == 0
}

// initialized reports whether the init containers all succeeded in the
// current sandbox (or a regular container already exists there, so they
// did before and were removed).
func initialized(pod *v1.Pod, rt *podRuntime) bool {
	for _, c := range pod.Spec.Containers {
		if rt.current(c.Name) != nil {
			return true
		}
	}
	for _, ic := range pod.Spec.InitContainers {
		c := rt.current(ic.Name)
		if c == nil || !c.done() || c.exitCode != 0 {
			return false
		}
	}
	return true
}

// nextInit picks the init container to start, if any: the first that has
// not succeeded, unless it is running or failed for good.
func nextInit(pod *v1.Pod, rt *podRuntime) (startAction, bool) {
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := rt.current(spec.Name)
		switch {
		case c == nil:
			return newStart(rt, spec, true, nil), true
		case c.running():
			return startAction{}, false
		case c.done() && c.exitCode == 0:
			continue
		case c.done():
			if pod.Spec.RestartPolicy == v1.RestartPolicyNever {
				return startAction{}, false
			}
			return newStart(rt, spec, true, c), true
		default:
			return newStart(rt, spec, true, c), true
		}
	}
	return startAction{}, false
}

// newStart numbers the new container after the newest of its name, in any
// sandbox: the attempt is the restart count.
func newStart(rt *podRuntime, spec *v1.Container, init bool, prev *container) startAction {
	s := startAction{spec: spec, init: init, prev: prev}
	if last := rt.latest(spec.Name); last != nil {
		s.attempt = last.attempt + 1
	}
	return s
}

// shouldRestart applies restartPolicy to an exited container.
func shouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}
