package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

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
	if mounted, err := isMountPoint(dir); err != nil || mounted {
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

// isMountPoint tells whether dir is on another device than its parent.
func isMountPoint(dir string) (bool, error) {
	var st, parent syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, err
	}
	if err := syscall.Stat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

// unmountUnder unmounts what the manager mounted below dir (memory
// emptyDirs), deepest first, so that dir can be removed.
func unmountUnder(dir string) error {
	mounts, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}
