package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/mountinfo"
)

func TestTmpfsSize(t *testing.T) {
	mi := func(n int64) resource.Quantity { return *resource.NewQuantity(n<<20, resource.BinarySI) }
	withLimits := func(limits ...int64) *v1.Pod {
		p := &v1.Pod{}
		for _, l := range limits {
			c := v1.Container{}
			if l > 0 {
				c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: mi(l)}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	node := v1.ResourceList{v1.ResourceMemory: mi(1024)}
	for _, tc := range []struct {
		name        string
		pod         *v1.Pod
		sizeLimit   *resource.Quantity
		allocatable v1.ResourceList
		want        int64
	}{
		{"size limit", withLimits(0), ptr.To(mi(64)), node, 64 << 20},
		{"no limit: the node's memory", withLimits(0), nil, node, 1024 << 20},
		{"pod limits add up", withLimits(100, 28), nil, node, 128 << 20},
		{"a container without limit: the node's", withLimits(100, 0), nil, node, 1024 << 20},
		{"size limit beyond the pod's limit", withLimits(32), ptr.To(mi(64)), node, 32 << 20},
		{"zero size limit is no limit", withLimits(0), ptr.To(mi(0)), node, 1024 << 20},
		{"nothing bounds it", withLimits(0), nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tmpfsSize(tc.pod, &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: tc.sizeLimit}, tc.allocatable)
			if got != tc.want {
				t.Errorf("size = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestMemoryEmptyDir mounts a real tmpfs: its size limit gives ENOSPC,
// a second setup does not mount it again, teardown unmounts and removes it.
func TestMemoryEmptyDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	root := t.TempDir()
	m := New(filepath.Join(root, "pods"), &sources{})
	p := pod(v1.Volume{Name: "shm", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{
		Medium: v1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi"))}}})
	t.Cleanup(func() { mountinfo.UnmountAll(root) })
	for range 2 {
		if _, err := m.Setup(context.Background(), p, nil); err != nil {
			t.Fatal(err)
		}
	}
	dir := m.Dir(p.UID, "shm")
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type != unix.TMPFS_MAGIC || int64(fs.Blocks)*fs.Bsize != 1<<20 {
		t.Errorf("statfs: type %#x, %d bytes, want tmpfs of 1 MiB", fs.Type, int64(fs.Blocks)*fs.Bsize)
	}
	if mounts, _ := mountPoints(dir); mounts != 1 {
		t.Errorf("%d mounts at %s after two setups, want 1", mounts, dir)
	}
	err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2<<20), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing 2 MiB to a 1 MiB volume: %v, want ENOSPC", err)
	}
	if err := m.Teardown(p.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.PodDir(p.UID)); !os.IsNotExist(err) {
		t.Errorf("pod dir remains: %v", err)
	}
}

func mountPoints(dir string) (int, error) {
	mounts, err := mountinfo.Read()
	n := 0
	for _, m := range mounts {
		if m.MountPoint == dir {
			n++
		}
	}
	return n, err
}
