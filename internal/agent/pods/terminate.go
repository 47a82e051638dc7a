package pods

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/agent/pods/probe"
)

// killContainer stops a running container: its preStop hook (when pod is
// known), then SIGTERM and, after what is left of grace, SIGKILL (the
// runtime's StopContainer timeout).
func (m *Manager) killContainer(ctx context.Context, pod *v1.Pod, c *container, grace time.Duration, message string) error {
	start := m.clock.Now()
	if pod != nil {
		m.containerEvent(pod, c.name, v1.EventTypeNormal, eventKilling, "%s", message)
		if spec := findContainer(pod, c.name); spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
			target := probe.Target{PodIP: m.statuses.current(pod).PodIP, ContainerID: c.id, Container: spec}
			if out, err := m.runner.Hook(ctx, spec.Lifecycle.PreStop, target, grace); err != nil {
				m.containerEvent(pod, c.name, v1.EventTypeWarning, eventHookFailed, "PreStopHook failed: %v %s", err, out)
			}
		}
	}
	left := max(grace-m.clock.Since(start), minGracePeriod)
	timeout := int64(math.Ceil(left.Seconds()))
	if err := m.cfg.Runtime.StopContainer(ctx, c.id, timeout); err != nil {
		return fmt.Errorf("container %q (%s): stop: %w", c.name, c.id, err)
	}
	m.log.Info("container stopped", "container", c.name, "id", c.id, "reason", message)
	return nil
}

// killAll stops the running containers in parallel, each with grace(c).
func (m *Manager) killAll(ctx context.Context, pod *v1.Pod, rt *podRuntime, grace func(*container) time.Duration, message string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, c := range rt.containers {
		if !c.running() {
			continue
		}
		wg.Go(func() {
			if err := m.killContainer(ctx, pod, c, grace(c), message); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// terminate carries out a graceful deletion: stop everything within the
// grace period, remove the pod from the node, then delete its object.
func (m *Manager) terminate(ctx context.Context, w *podWorker, pod *v1.Pod, rt *podRuntime) (syncResult, error) {
	if w.killDeadline.IsZero() {
		grace := int64(v1.DefaultTerminationGracePeriodSeconds)
		switch {
		case pod.DeletionGracePeriodSeconds != nil:
			grace = *pod.DeletionGracePeriodSeconds
		case pod.Spec.TerminationGracePeriodSeconds != nil:
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		w.killDeadline = m.clock.Now().Add(time.Duration(grace) * time.Second)
		m.log.Info("terminating pod", "pod", podRef(pod), "gracePeriod", grace)
	}
	m.probes.Remove(pod.UID)
	left := w.killDeadline.Sub(m.clock.Now())
	if err := m.killAll(ctx, pod, rt, func(*container) time.Duration { return left }, "Stopping container"); err != nil {
		return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	if err := m.writeTerminalPhase(ctx, pod); err != nil {
		return syncResult{}, err
	}
	if err := m.removeFromNode(ctx, pod.UID, rt); err != nil {
		return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	// The UID precondition keeps a namesake created meanwhile alive.
	err := m.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return syncResult{requeue: pendingResync}, fmt.Errorf("pod %q: delete: %w", podRef(pod), err)
	}
	m.log.Info("pod deleted", "pod", podRef(pod))
	// The logs outlive the containers until the object is gone, for
	// `kubectl logs` on a terminating pod.
	return syncResult{requeue: pendingResync}, m.removeLogs(pod.UID)
}

// writeTerminalPhase reports a deleted pod whose containers have all
// stopped as Succeeded (every container exited 0) or Failed, before its
// object goes, as the kubelet does since Kubernetes 1.27: controllers that
// replace only failed pods (a Job's podReplacementPolicy Failed) and
// disruption conditions see how the pod ended.
func (m *Manager) writeTerminalPhase(ctx context.Context, pod *v1.Pod) error {
	if terminal(m.statuses.current(pod).Phase) {
		return nil
	}
	rt, err := m.reader.read(ctx, pod.UID)
	if err != nil {
		return fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	s := m.computeStatus(pod, rt)
	if !terminal(s.Phase) {
		s.Phase = terminatedPhase(s.ContainerStatuses)
	}
	if err := m.writeStatus(ctx, pod, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %q: final status: %w", podRef(pod), err)
	}
	return nil
}

// terminatedPhase is the phase of a pod whose containers were all stopped:
// Succeeded only when each of them ran and exited 0.
func terminatedPhase(statuses []v1.ContainerStatus) v1.PodPhase {
	if len(statuses) == 0 {
		return v1.PodFailed
	}
	for _, st := range statuses {
		if t := st.State.Terminated; t == nil || t.ExitCode != 0 {
			return v1.PodFailed
		}
	}
	return v1.PodSucceeded
}

// cleanupGone removes a pod the API no longer has: deleted while the agent
// was down, force-deleted, or just finalized by terminate.
func (m *Manager) cleanupGone(ctx context.Context, uid types.UID, rt *podRuntime) (syncResult, error) {
	m.probes.Remove(uid)
	// Without a spec, a container gets the grace period it was created with.
	grace := func(c *container) time.Duration {
		if s, err := strconv.ParseInt(c.annotations[annotationGracePeriod], 10, 64); err == nil {
			return time.Duration(s) * time.Second
		}
		return v1.DefaultTerminationGracePeriodSeconds * time.Second
	}
	if err := m.killAll(ctx, nil, rt, grace, "pod is gone"); err != nil {
		return syncResult{}, fmt.Errorf("pod %s: %w", uid, err)
	}
	if err := m.removeFromNode(ctx, uid, rt); err != nil {
		return syncResult{}, fmt.Errorf("pod %s: %w", uid, err)
	}
	if err := m.removeLogs(uid); err != nil {
		return syncResult{}, err
	}
	return syncResult{done: true}, nil
}

// removeFromNode removes the pod's containers, sandboxes (the runtime
// releases their network), volumes and cgroups.
func (m *Manager) removeFromNode(ctx context.Context, uid types.UID, rt *podRuntime) error {
	for _, s := range rt.sandboxes {
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if err := m.cfg.Runtime.StopPodSandbox(ctx, s.Id); err != nil {
				return fmt.Errorf("stop sandbox %s: %w", s.Id, err)
			}
		}
	}
	for _, c := range rt.containers {
		if err := m.cfg.Runtime.RemoveContainer(ctx, c.id); err != nil {
			return fmt.Errorf("remove container %s: %w", c.id, err)
		}
		m.reader.forget(c.id)
	}
	for _, s := range rt.sandboxes {
		if err := m.cfg.Runtime.RemovePodSandbox(ctx, s.Id); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", s.Id, err)
		}
	}
	if len(rt.sandboxes)+len(rt.containers) > 0 {
		m.log.Info("pod removed from the runtime", "uid", uid, "sandboxes", len(rt.sandboxes), "containers", len(rt.containers))
	}
	if err := m.volumes.Teardown(uid); err != nil {
		return err
	}
	if err := m.removeCgroups(uid); err != nil {
		return fmt.Errorf("remove cgroups: %w", err)
	}
	return nil
}

// removeLogs removes the pod's log directory.
func (m *Manager) removeLogs(uid types.UID) error {
	for _, dir := range m.logDirsFor(uid) {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("pod %s: remove logs: %w", uid, err)
		}
	}
	return nil
}

// activeDeadline is how long the pod may still run under
// activeDeadlineSeconds; ok is false without a deadline or start time.
func (m *Manager) activeDeadline(pod *v1.Pod) (time.Duration, bool) {
	start := m.statuses.current(pod).StartTime
	if pod.Spec.ActiveDeadlineSeconds == nil || start == nil {
		return 0, false
	}
	deadline := start.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second)
	return deadline.Sub(m.clock.Now()), true
}

// failDeadline ends a pod that ran past its activeDeadlineSeconds, as the
// kubelet does: every container is killed and the pod fails.
func (m *Manager) failDeadline(ctx context.Context, pod *v1.Pod, rt *podRuntime) (syncResult, error) {
	const msg = "Pod was active on the node longer than the specified deadline"
	m.podEvent(pod, v1.EventTypeNormal, "DeadlineExceeded", msg)
	return m.failPod(ctx, pod, rt, "DeadlineExceeded", msg, nil)
}

// failPod kills every container of pod and reports it Failed with reason
// and message, and cond when not nil.
func (m *Manager) failPod(ctx context.Context, pod *v1.Pod, rt *podRuntime, reason, msg string, cond *v1.PodCondition) (syncResult, error) {
	if err := m.killAll(ctx, pod, rt, func(c *container) time.Duration { return m.podGrace(pod, c.name) }, msg); err != nil {
		return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	if err := m.stopRemaining(ctx, pod, rt); err != nil {
		return syncResult{}, err
	}
	rt, err := m.reader.read(ctx, pod.UID)
	if err != nil {
		return syncResult{}, fmt.Errorf("pod %q: %w", podRef(pod), err)
	}
	s := m.computeStatus(pod, rt)
	s.Phase, s.Reason, s.Message = v1.PodFailed, reason, msg
	if cond != nil {
		setCondition(&s, *cond)
	}
	return syncResult{}, m.writeStatus(ctx, pod, s)
}

// podGrace is how long a container of pod gets to stop when the agent
// kills it for the pod's sake (probe failure, sandbox change).
func (m *Manager) podGrace(pod *v1.Pod, container string) time.Duration {
	grace := int64(v1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if c := findContainer(pod, container); c != nil && c.LivenessProbe != nil && c.LivenessProbe.TerminationGracePeriodSeconds != nil {
		grace = *c.LivenessProbe.TerminationGracePeriodSeconds
	}
	return time.Duration(grace) * time.Second
}

// setCondition sets c in s, replacing one of its type.
func setCondition(s *v1.PodStatus, c v1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}
