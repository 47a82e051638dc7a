package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStats returns one container's CPU, memory and filesystem use.
func (c *Client) ContainerStats(ctx context.Context, containerID string) (*runtimeapi.ContainerStats, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: containerID})
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("container %q: stats", containerID))
	}
	return resp.Stats, nil
}

// ListContainerStats returns the stats of the containers matching filter.
func (c *Client) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: filter})
	if err != nil {
		return nil, c.wrap(err, "list container stats")
	}
	return resp.Stats, nil
}

// PodSandboxStats returns one sandbox's stats.
func (c *Client) PodSandboxStats(ctx context.Context, podSandboxID string) (*runtimeapi.PodSandboxStats, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podSandboxID})
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("pod sandbox %q: stats", podSandboxID))
	}
	return resp.Stats, nil
}

// ListPodSandboxStats returns the stats of the sandboxes matching filter.
func (c *Client) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: filter})
	if err != nil {
		return nil, c.wrap(err, "list pod sandbox stats")
	}
	return resp.Stats, nil
}

// ListMetricDescriptors is not implemented by containerd 1.6.
func (c *Client) ListMetricDescriptors(ctx context.Context) ([]*runtimeapi.MetricDescriptor, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		return nil, c.wrap(err, "list metric descriptors")
	}
	return resp.Descriptors, nil
}

// ListPodSandboxMetrics is not implemented by containerd 1.6.
func (c *Client) ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return nil, c.wrap(err, "list pod sandbox metrics")
	}
	return resp.PodMetrics, nil
}
