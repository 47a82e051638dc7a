package volume

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"wharf.dev/wharf/internal/mountinfo"
)

// memoryEmptyDir mounts a tmpfs at dir for an emptyDir of medium Memory,
// once: later syncs find it mounted. Its size is the volume's sizeLimit,
// at most the pod's memory limit (or the node's allocatable memory when a
// container has none), as the kubelet sizes memory-backed volumes. Pages
// written to it are charged to the writing container's memory cgroup, so
// they count against its limit too.
func memoryEmptyDir(dir string, pod *v1.Pod, v *v1.EmptyDirVolumeSource, allocatable v1.ResourceList) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if mounted, err := mountinfo.IsMountPoint(dir); err != nil || mounted {
		return err
	}
	size := tmpfsSize(pod, v, allocatable)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0777", size)); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// tmpfsSize is the byte size of a memory-backed emptyDir; 0 (tmpfs's
// default, half the machine's memory) only when nothing bounds it.
func tmpfsSize(pod *v1.Pod, v *v1.EmptyDirVolumeSource, allocatable v1.ResourceList) int64 {
	var limit int64
	if m, ok := allocatable[v1.ResourceMemory]; ok {
		limit = m.Value()
	}
	var podLimit int64
	for _, c := range pod.Spec.Containers {
		m, ok := c.Resources.Limits[v1.ResourceMemory]
		if !ok {
			podLimit = 0
			break
		}
		podLimit += m.Value()
	}
	if podLimit > 0 && (limit == 0 || podLimit < limit) {
		limit = podLimit
	}
	if s := v.SizeLimit; s != nil && s.Sign() > 0 && (limit == 0 || s.Value() < limit) {
		limit = s.Value()
	}
	return limit
}
