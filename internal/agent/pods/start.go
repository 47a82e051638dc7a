package pods

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"

	"wharf.dev/wharf/internal/agent/pods/probe"
)

// startContainer starts one container: back-off, image, config, create,
// start, postStart hook. A step that fails records the container's
// waiting reason; the result says whether it started and otherwise how
// long until it is worth trying again.
func (m *Manager) startContainer(ctx context.Context, pod *v1.Pod, sb sandboxRef, s startAction, vols map[string]string) (bool, time.Duration) {
	c := s.spec
	key := backOffKey(pod.UID, c.Name)
	if p := s.prev; p != nil {
		// Runtime timestamps: a container that ran long enough before it
		// exited starts the progression over.
		healthy := !p.startedAt.IsZero() && !p.finishedAt.IsZero() && p.finishedAt.Sub(p.startedAt) >= healthyRun
		m.restarts.failed(key, p.id, healthy)
	}
	if wait := m.restarts.remaining(key); wait > 0 {
		m.crashLoop(pod, c)
		return false, wait
	}

	ref, ok, wait := m.ensureImage(ctx, pod, c, sb.config)
	if !ok {
		return false, wait
	}
	svcEnv, err := m.servicesEnv(ctx, pod)
	if err != nil {
		return false, m.configError(pod, c, err)
	}
	env, err := resolveEnv(ctx, pod, c, envInputs{objects: m.objects, addresses: sb.addr, allocatable: m.allocatable(), services: svcEnv})
	if err != nil {
		return false, m.configError(pod, c, err)
	}
	hosts, err := m.writeHosts(pod, sb.addr.PodIPs)
	if err != nil {
		return false, m.configError(pod, c, err)
	}
	cfg, subDirs, err := containerConfig(containerInputs{
		pod: pod, container: c, attempt: s.attempt, imageRef: ref, env: env, volumes: vols,
		layout: m.layout, qos: qosClass(pod), memoryCapacity: m.memoryCapacity(), hostsFile: hosts,
	})
	if err == nil {
		err = m.prepareFiles(pod, c, s.attempt, sb, subDirs)
	}
	if err != nil {
		return false, m.configError(pod, c, err)
	}

	id, err := m.cfg.Runtime.CreateContainer(ctx, sb.id, cfg, sb.config)
	if err != nil {
		cause := nextFailure("create")
		wait, _ := m.restarts.failed(key, cause, false)
		m.setReason(pod, c, reasonCreateContainer, grpcMessage(err), cause)
		m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventFailed, "Error: %s", grpcMessage(err))
		return false, max(wait, time.Second)
	}
	m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventCreated, "Created container: %s", c.Name)
	if err := m.cfg.Runtime.StartContainer(ctx, id); err != nil {
		wait, _ := m.restarts.failed(key, id, false)
		m.setReason(pod, c, reasonRunContainer, grpcMessage(err), id)
		m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventFailed, "Error: %s", grpcMessage(err))
		return false, max(wait, time.Second)
	}
	m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventStarted, "Started container %s", c.Name)
	m.reasons.clear(pod.UID, c.Name)
	m.log.Info("container started", "pod", podRef(pod), "container", c.Name, "attempt", s.attempt, "id", id)

	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		target := probe.Target{PodIP: first(sb.addr.PodIPs), ContainerID: id, Container: c}
		if out, err := m.runner.Hook(ctx, c.Lifecycle.PostStart, target, m.podGrace(pod, c.Name)); err != nil {
			msg := fmt.Sprintf("PostStartHook failed: %v %s", err, out)
			m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventPostStartFail, "%s", msg)
			if err := m.cfg.Runtime.StopContainer(ctx, id, int64(minGracePeriod/time.Second)); err != nil {
				m.log.Warn("stop container after failed postStart hook", "pod", podRef(pod), "container", c.Name, "err", err)
			}
			m.restarts.failed(key, id, false)
			m.setReason(pod, c, reasonPostStartHook, msg, id)
		}
	}
	return true, 0
}

// crashLoop records CrashLoopBackOff unless the reason already describes
// the failure being waited out (a create or start error says more).
func (m *Manager) crashLoop(pod *v1.Pod, c *v1.Container) {
	key := backOffKey(pod.UID, c.Name)
	cause := m.restarts.cause(key)
	cur, ok := m.reasons.get(pod.UID, c.Name)
	if ok && cur.cause == cause && cur.reason != reasonCrashLoopBackOff {
		return
	}
	msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", m.restarts.delay(key), c.Name, pod.Name, pod.Namespace, pod.UID)
	if !ok || cur.message != msg {
		m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventBackOff, "Back-off restarting failed container %s in pod %s", c.Name, pod.Name)
	}
	m.setReason(pod, c, reasonCrashLoopBackOff, msg, cause)
}

// configError records a CreateContainerConfigError; it is retried on the
// next sync (a missing ConfigMap's watch wakes the pod as it appears).
func (m *Manager) configError(pod *v1.Pod, c *v1.Container, err error) time.Duration {
	m.setReason(pod, c, reasonCreateConfig, err.Error(), "")
	m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventFailed, "Error: %v", err)
	return pendingResync
}

// prepareFiles creates what the container's mounts and logs need: subPath
// directories, its log directory and an empty termination message file.
func (m *Manager) prepareFiles(pod *v1.Pod, c *v1.Container, attempt uint32, sb sandboxRef, subDirs []string) error {
	for _, d := range subDirs {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create subPath %s: %w", d, err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(sb.config.LogDirectory, c.Name), 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	if c.TerminationMessagePath == "" {
		return nil
	}
	path := m.layout.terminationFile(pod.UID, c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("termination message file: %w", err)
	}
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		return fmt.Errorf("termination message file: %w", err)
	}
	// Any container user may write its message.
	return os.Chmod(path, 0o666)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
