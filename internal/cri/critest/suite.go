// Package critest is the conformance suite of the CRI services the agent
// uses (k8s.io/cri-api RuntimeService and ImageManagerService). It runs
// against any implementation: cri-api's fakes, and internal/cri's client
// on a real containerd. It also holds what a real run needs and what
// other packages' integration tests can reuse: a throwaway Host (network
// namespace, cgroup subtree, containerd, CNI bridge) and an in-test
// Registry serving busybox and pause images built from /bin/busybox.
package critest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Env is one implementation under test and what it can do beyond
// bookkeeping (fakes record calls; a real runtime runs processes).
type Env struct {
	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// Image is a busybox image (sh, sleep, echo, cat, httpd, wget).
	Image string
	// LogDir holds the sandboxes' LogDirectory.
	LogDir string
	// CgroupParent returns a sandbox's CgroupParent for a pod uid; nil
	// leaves it unset.
	CgroupParent func(uid string) string

	// Exec: ExecSync runs commands and returns their output.
	Exec bool
	// Logs: containers write CRI-format log files under LogDir.
	Logs bool
	// Network: sandboxes get addresses; nil skips the network tests.
	Network *Network
}

// Network says how a real runtime's pods are reached.
type Network struct {
	// CIDR is where pod addresses come from.
	CIDR netip.Prefix
	// Dial connects from the host (the runtime's network namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Run runs the whole suite; newEnv is called once and its Env shared by
// the subtests (each uses its own pods).
func Run(t *testing.T, newEnv func(t *testing.T) *Env) {
	env := newEnv(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *Env)
	}{
		{"Version", TestVersion},
		{"PullImage", TestPullImage},
		{"PodLifecycle", TestPodLifecycle},
		{"ListFilters", TestListFilters},
		{"ContainerLogs", TestContainerLogs},
		{"PodNetwork", TestPodNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

// TestVersion: Version and Status answer.
func TestVersion(t *testing.T, env *Env) {
	ctx := testContext(t)
	v, err := env.Runtime.Version(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName == "" || v.RuntimeVersion == "" {
		t.Errorf("Version = %+v: want a runtime name and version", v)
	}
	t.Logf("runtime %s %s, CRI %s", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
	if _, err := env.Runtime.Status(ctx, false); err != nil {
		t.Errorf("Status: %v", err)
	}
}

// TestPullImage: a pulled image is listed and has a status; pulling again
// gives the same reference.
func TestPullImage(t *testing.T, env *Env) {
	ctx := testContext(t)
	spec := &runtimeapi.ImageSpec{Image: env.Image}
	began := time.Now()
	ref, err := env.Images.PullImage(ctx, spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pulled %s in %v: %s", env.Image, time.Since(began).Round(time.Millisecond), ref)
	again, err := env.Images.PullImage(ctx, spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again != ref {
		t.Errorf("second pull: reference %q, want %q", again, ref)
	}
	st, err := env.Images.ImageStatus(ctx, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Image == nil || !contains(st.Image.RepoTags, env.Image) {
		t.Errorf("ImageStatus(%s) = %v: want the image with that tag", env.Image, st.Image)
	}
	images, err := env.Images.ListImages(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, img := range images {
		found = found || contains(img.RepoTags, env.Image)
	}
	if !found {
		t.Errorf("ListImages: %s missing from %d images", env.Image, len(images))
	}
	if _, err := env.Images.ImageFsInfo(ctx); err != nil {
		t.Errorf("ImageFsInfo: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testContext bounds a subtest so that a stuck runtime fails it rather
// than the whole test binary.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, fmt.Errorf("after %v: %w", timeout, err))
}
