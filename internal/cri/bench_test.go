package cri_test

import (
	"context"
	"fmt"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/cri/critest"
)

// BenchmarkPodStart: a pod with two busybox containers, image already
// pulled, from RunPodSandbox to both containers started.
func BenchmarkPodStart(b *testing.B) { benchmarkPodStart(b, false) }

// BenchmarkPodStartColdPull: the same on a fresh host each time, so the
// pause and busybox images come from the loopback registry (hosts.toml,
// TLS, bearer token). RemoveImage would not do: containerd's content GC
// runs later and the blobs would often still be there.
func BenchmarkPodStartColdPull(b *testing.B) { benchmarkPodStart(b, true) }

func benchmarkPodStart(b *testing.B, cold bool) {
	critest.SkipUnlessRoot(b)
	reg := critest.ServeImages(b)
	ctx := context.Background()
	image := &runtimeapi.ImageSpec{Image: reg.Busybox}
	var h *critest.Host
	if !cold {
		h = critest.NewHost(b, reg, "")
		// The pause image comes with the first sandbox: not part of
		// this figure.
		id, err := h.Client.RunPodSandbox(ctx, sandboxConfig(h, "warmup"), "")
		if err != nil {
			b.Fatal(err)
		}
		h.Client.StopPodSandbox(ctx, id)
		h.Client.RemovePodSandbox(ctx, id)
		if _, err := h.Client.PullImage(ctx, image, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if cold {
			h = critest.NewHost(b, reg, "") // removed when the benchmark ends
		}
		sb := sandboxConfig(h, fmt.Sprintf("bench-%d", i))
		b.StartTimer()

		id, err := h.Client.RunPodSandbox(ctx, sb, "")
		if err != nil {
			b.Fatal(err)
		}
		if cold {
			if _, err := h.Client.PullImage(ctx, image, nil, sb); err != nil {
				b.Fatal(err)
			}
		}
		for _, name := range []string{"one", "two"} {
			cid, err := h.Client.CreateContainer(ctx, id, &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: name},
				Image:    image,
				Command:  []string{"sleep", "3600"},
			}, sb)
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Client.StartContainer(ctx, cid); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		h.Client.StopPodSandbox(ctx, id)
		h.Client.RemovePodSandbox(ctx, id)
		b.StartTimer()
	}
}

func sandboxConfig(h *critest.Host, name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: name},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: h.CgroupRoot + "/pod" + name},
	}
}
