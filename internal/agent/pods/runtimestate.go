package pods

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// container is what the agent knows of one runtime container.
type container struct {
	id, name, sandboxID string
	attempt             uint32
	state               runtimeapi.ContainerState
	createdAt           time.Time
	startedAt           time.Time
	finishedAt          time.Time
	exitCode            int32
	reason, message     string
	imageRef            string
	annotations         map[string]string
	logPath             string

	// termMessage caches the termination message once read (termRead);
	// only the pod's worker touches it.
	termMessage string
	termRead    bool
}

// done reports whether the container ran and exited.
func (c *container) done() bool { return c.state == runtimeapi.ContainerState_CONTAINER_EXITED }

func (c *container) running() bool { return c.state == runtimeapi.ContainerState_CONTAINER_RUNNING }

// podRuntime is a pod's objects in the runtime, newest first.
type podRuntime struct {
	sandboxes []*runtimeapi.PodSandbox
	// sandboxStatus is the newest sandbox's, nil without sandboxes.
	sandboxStatus *runtimeapi.PodSandboxStatus
	containers    []*container
}

// sandbox is the newest sandbox, nil if none.
func (r *podRuntime) sandbox() *runtimeapi.PodSandbox {
	if len(r.sandboxes) == 0 {
		return nil
	}
	return r.sandboxes[0]
}

// sandboxReady reports whether the newest sandbox is up.
func (r *podRuntime) sandboxReady() bool {
	s := r.sandbox()
	return s != nil && s.State == runtimeapi.PodSandboxState_SANDBOX_READY
}

// podIPs are the newest sandbox's addresses while it is up.
func (r *podRuntime) podIPs() []string {
	if !r.sandboxReady() || r.sandboxStatus == nil || r.sandboxStatus.Network == nil || r.sandboxStatus.Network.Ip == "" {
		return nil
	}
	ips := []string{r.sandboxStatus.Network.Ip}
	for _, ip := range r.sandboxStatus.Network.AdditionalIps {
		ips = append(ips, ip.Ip)
	}
	return ips
}

// history lists the containers named name, newest first, across sandboxes.
func (r *podRuntime) history(name string) []*container {
	var out []*container
	for _, c := range r.containers {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// latest is the newest container named name.
func (r *podRuntime) latest(name string) *container {
	for _, c := range r.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// current is the newest container named name in the newest sandbox: what
// decides whether it must (re)start. Older sandboxes only count for
// restart counts and last states.
func (r *podRuntime) current(name string) *container {
	s := r.sandbox()
	if s == nil {
		return nil
	}
	for _, c := range r.containers {
		if c.name == name && c.sandboxID == s.Id {
			return c
		}
	}
	return nil
}

// runtimeReader reads pods' runtime state. Exited containers never
// change, so their status is cached instead of asked for on every sync.
type runtimeReader struct {
	runtime internalapi.RuntimeService
	mu      sync.Mutex
	cache   map[string]*container
}

func newRuntimeReader(rt internalapi.RuntimeService) *runtimeReader {
	return &runtimeReader{runtime: rt, cache: map[string]*container{}}
}

// read returns the pod's sandboxes and containers, found by label.
func (rr *runtimeReader) read(ctx context.Context, uid types.UID) (*podRuntime, error) {
	selector := map[string]string{labelPodUID: string(uid)}
	sandboxes, err := rr.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	sort.SliceStable(sandboxes, func(i, j int) bool {
		a, b := sandboxes[i], sandboxes[j]
		if a.GetMetadata().GetAttempt() != b.GetMetadata().GetAttempt() {
			return a.GetMetadata().GetAttempt() > b.GetMetadata().GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	r := &podRuntime{sandboxes: sandboxes}
	if len(sandboxes) > 0 {
		resp, err := rr.runtime.PodSandboxStatus(ctx, sandboxes[0].Id, false)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s status: %w", sandboxes[0].Id, err)
		}
		r.sandboxStatus = resp.GetStatus()
	}
	list, err := rr.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range list {
		info, err := rr.status(ctx, c)
		if err != nil {
			return nil, err
		}
		r.containers = append(r.containers, info)
	}
	sort.SliceStable(r.containers, func(i, j int) bool {
		a, b := r.containers[i], r.containers[j]
		if a.attempt != b.attempt {
			return a.attempt > b.attempt
		}
		return a.createdAt.After(b.createdAt)
	})
	return r, nil
}

// status asks the runtime for a container's details unless the cached
// ones are for the same state.
func (rr *runtimeReader) status(ctx context.Context, c *runtimeapi.Container) (*container, error) {
	rr.mu.Lock()
	cached, ok := rr.cache[c.Id]
	rr.mu.Unlock()
	if ok && cached.state == c.State {
		return cached, nil
	}
	resp, err := rr.runtime.ContainerStatus(ctx, c.Id, false)
	if err != nil {
		return nil, fmt.Errorf("container %s status: %w", c.Id, err)
	}
	s := resp.GetStatus()
	info := &container{
		id:          c.Id,
		name:        c.GetMetadata().GetName(),
		sandboxID:   c.PodSandboxId,
		attempt:     c.GetMetadata().GetAttempt(),
		state:       s.GetState(),
		createdAt:   unixNano(s.GetCreatedAt()),
		startedAt:   unixNano(s.GetStartedAt()),
		finishedAt:  unixNano(s.GetFinishedAt()),
		exitCode:    s.GetExitCode(),
		reason:      s.GetReason(),
		message:     s.GetMessage(),
		imageRef:    s.GetImageRef(),
		annotations: c.Annotations,
		logPath:     s.GetLogPath(),
	}
	if info.name == "" {
		info.name = c.Labels[labelContainerName]
	}
	rr.mu.Lock()
	rr.cache[c.Id] = info
	rr.mu.Unlock()
	return info, nil
}

// forget drops cached statuses of containers that are gone.
func (rr *runtimeReader) forget(ids ...string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for _, id := range ids {
		delete(rr.cache, id)
	}
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
