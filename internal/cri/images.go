package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists the images matching filter (nil: all).
func (c *Client) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: filter})
	if err != nil {
		return nil, c.wrap(err, "list images")
	}
	return resp.Images, nil
}

// ImageStatus returns the image, or a response with a nil Image when it is
// not present (CRI's way of saying so; not an error).
func (c *Client) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: image, Verbose: verbose})
	if err != nil {
		return nil, c.wrap(err, fmt.Sprintf("image %q: status", image.GetImage()))
	}
	return resp, nil
}

// PullImage pulls an image and returns its reference (the image id). The
// registry configuration (hosts.toml) is containerd's; auth is usually nil.
func (c *Client) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	ctx, cancel := withTimeout(ctx, c.opts.pullTimeout)
	defer cancel()
	resp, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: image, Auth: auth, SandboxConfig: podSandboxConfig})
	if err != nil {
		return "", c.wrap(err, fmt.Sprintf("image %q: pull", image.GetImage()))
	}
	if resp.ImageRef == "" {
		return "", fmt.Errorf("image %q: pull: runtime returned no reference", image.GetImage())
	}
	return resp.ImageRef, nil
}

// RemoveImage removes an image (no error if it is already gone).
func (c *Client) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: image})
	return c.wrap(err, fmt.Sprintf("image %q: remove", image.GetImage()))
}

// ImageFsInfo returns the usage of the image filesystem.
func (c *Client) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, c.wrap(err, "image fs info")
	}
	return resp, nil
}
