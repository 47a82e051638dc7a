package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RunPodSandbox creates and starts a pod sandbox (pause container and
// network). containerd pulls the sandbox image itself when missing.
func (c *Client) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config, RuntimeHandler: runtimeHandler})
	if err != nil {
		return "", c.wrap(err, fmt.Sprintf("pod sandbox %q: run", sandboxName(config)))
	}
	if resp.PodSandboxId == "" {
		return "", fmt.Errorf("pod sandbox %q: run: runtime returned no id", sandboxName(config))
	}
	return resp.PodSandboxId, nil
}

// StopPodSandbox stops the sandbox's containers and tears down its network.
func (c *Client) StopPodSandbox(ctx context.Context, podSandboxID string) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podSandboxID})
	return c.wrap(err, fmt.Sprintf("pod sandbox %q: stop", podSandboxID))
}

// RemovePodSandbox removes the sandbox and (in containerd) its containers.
func (c *Client) RemovePodSandbox(ctx context.Context, podSandboxID string) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podSandboxID})
	return c.wrap(err, fmt.Sprintf("pod sandbox %q: remove", podSandboxID))
}

// PodSandboxStatus returns the sandbox's state and network status.
func (c *Client) PodSandboxStatus(ctx context.Context, podSandboxID string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podSandboxID, Verbose: verbose})
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("pod sandbox %q: status", podSandboxID))
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("pod sandbox %q: status: runtime returned none", podSandboxID)
	}
	return resp, nil
}

// ListPodSandbox lists the sandboxes matching filter (nil: all).
func (c *Client) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return nil, c.wrap(err, "list pod sandboxes")
	}
	return resp.Items, nil
}

// RemoveAllPodSandboxes stops and removes every pod sandbox of the runtime
// at socket, so that it tears down their networks (CNI DEL) and mounts
// itself. It goes on past a sandbox that fails and returns how many
// sandboxes there were, with what failed. A missing socket means no
// runtime and no sandboxes. It gives up after 30 seconds in all.
func RemoveAllPodSandboxes(ctx context.Context, socket string) (int, error) {
	if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("cri %s: %w", socket, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, socket)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	sandboxes, err := c.ListPodSandbox(ctx, nil)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, sb := range sandboxes {
		errs = append(errs, c.StopPodSandbox(ctx, sb.Id), c.RemovePodSandbox(ctx, sb.Id))
	}
	return len(sandboxes), errors.Join(errs...)
}

// PortForward returns the streaming URL for a port forward.
func (c *Client) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.PortForward(ctx, req)
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("pod sandbox %q: port forward", req.GetPodSandboxId()))
	}
	return resp, nil
}

// UpdatePodSandboxResources is not implemented by containerd 1.6.
func (c *Client) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.UpdatePodSandboxResources(ctx, req)
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("pod sandbox %q: update resources", req.GetPodSandboxId()))
	}
	return resp, nil
}

// CheckpointPod is not implemented by containerd 1.6.
func (c *Client) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.CheckpointPod(ctx, req)
	return c.wrap(err, fmt.Sprintf("pod sandbox %q: checkpoint", req.GetPodSandboxId()))
}

// RestorePod is not implemented by containerd 1.6.
func (c *Client) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	resp, err := c.runtime.RestorePod(ctx, req)
	if err != nil {
		return nil, c.wrap(err, "restore pod")
	}
	return resp, nil
}

// sandboxName names a sandbox in errors before it has an id.
func sandboxName(config *runtimeapi.PodSandboxConfig) string {
	m := config.GetMetadata()
	return m.GetNamespace() + "/" + m.GetName()
}
