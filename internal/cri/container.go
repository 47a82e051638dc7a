package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"
)

// CreateContainer creates a container in a sandbox. It never pulls: call
// PullImage with the same image name first.
func (c *Client) CreateContainer(ctx context.Context, podSandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  podSandboxID,
		Config:        config,
		SandboxConfig: sandboxConfig,
	})
	what := fmt.Sprintf("container %q in pod sandbox %q: create", config.GetMetadata().GetName(), podSandboxID)
	if err != nil {
		return "", c.wrap(err, what)
	}
	if resp.ContainerId == "" {
		return "", fmt.Errorf("%s: runtime returned no id", what)
	}
	return resp.ContainerId, nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, containerID string) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: containerID})
	return c.wrap(err, fmt.Sprintf("container %q: start", containerID))
}

// StopContainer stops a container: SIGTERM (or the image's stop signal),
// SIGKILL after timeout seconds.
func (c *Client) StopContainer(ctx context.Context, containerID string, timeout int64) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout+time.Duration(timeout)*time.Second)
	defer cancel()
	_, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: containerID, Timeout: timeout})
	return c.wrap(err, fmt.Sprintf("container %q: stop", containerID))
}

// RemoveContainer removes a container (killing it if it runs).
func (c *Client) RemoveContainer(ctx context.Context, containerID string) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: containerID})
	return c.wrap(err, fmt.Sprintf("container %q: remove", containerID))
}

// ListContainers lists the containers matching filter (nil: all).
func (c *Client) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter})
	if err != nil {
		return nil, c.wrap(err, "list containers")
	}
	return resp.Containers, nil
}

// ContainerStatus returns a container's state, exit code, log path.
func (c *Client) ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: containerID, Verbose: verbose})
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("container %q: status", containerID))
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("container %q: status: runtime returned none", containerID)
	}
	return resp, nil
}

// UpdateContainerResources changes a running container's limits.
func (c *Client) UpdateContainerResources(ctx context.Context, containerID string, resources *runtimeapi.ContainerResources) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: containerID,
		Linux:       resources.GetLinux(),
		Windows:     resources.GetWindows(),
	})
	return c.wrap(err, fmt.Sprintf("container %q: update resources", containerID))
}

// ExecSync runs cmd in the container and returns its output. As in
// kubelet, a non-zero exit is an error of type utilexec.CodeExitError
// (probes read the code from it), and timeout 0 means no limit.
func (c *Client) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout []byte, stderr []byte, err error) {
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout+timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	resp, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
		ContainerId: containerID,
		Cmd:         cmd,
		Timeout:     int64(timeout.Seconds()),
	})
	if err != nil {
		if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
			// containerd's own timeout: the command ran too long.
			return nil, nil, fmt.Errorf("container %q: exec %q: command timed out after %v: %w", containerID, cmd, timeout, err)
		}
		return nil, nil, c.wrap(err, fmt.Sprintf("container %q: exec %q", containerID, cmd))
	}
	if resp.ExitCode != 0 {
		err = utilexec.CodeExitError{
			Err:  fmt.Errorf("container %q: command %q exited with %d: %s", containerID, strings.Join(cmd, " "), resp.ExitCode, resp.Stderr),
			Code: int(resp.ExitCode),
		}
	}
	return resp.Stdout, resp.Stderr, err
}

// Exec returns the streaming URL of an exec session.
func (c *Client) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.Exec(ctx, req)
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("container %q: exec", req.GetContainerId()))
	}
	if resp.Url == "" {
		return nil, fmt.Errorf("container %q: exec: runtime returned no URL", req.GetContainerId())
	}
	return resp, nil
}

// Attach returns the streaming URL of an attach session.
func (c *Client) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.Attach(ctx, req)
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("container %q: attach", req.GetContainerId()))
	}
	if resp.Url == "" {
		return nil, fmt.Errorf("container %q: attach: runtime returned no URL", req.GetContainerId())
	}
	return resp, nil
}

// ReopenContainerLog makes the runtime reopen the container's log file
// (after the caller rotated it).
func (c *Client) ReopenContainerLog(ctx context.Context, containerID string) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: containerID})
	return c.wrap(err, fmt.Sprintf("container %q: reopen log", containerID))
}

// CheckpointContainer is not implemented by containerd 1.6.
func (c *Client) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.CheckpointContainer(ctx, req)
	return c.wrap(err, fmt.Sprintf("container %q: checkpoint", req.GetContainerId()))
}

// GetContainerEvents streams container events into ch until ctx ends or
// the stream breaks (containerd 1.6 does not implement it: the error says
// so). connected, if set, is called once the stream is open.
func (c *Client) GetContainerEvents(ctx context.Context, ch chan *runtimeapi.ContainerEventResponse, connected func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	stream, err := c.runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return c.wrap(err, "container events")
	}
	if connected != nil {
		connected(stream)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("container events: stream closed: %w", err)
		}
		if err != nil {
			return c.wrap(err, "container events")
		}
		select {
		case ch <- resp:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
