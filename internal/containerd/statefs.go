package containerd

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"wharf.dev/wharf/internal/mountinfo"
)

// stateFSOptions: containerd and runc keep little there (bundles, fifos,
// netns mount points, state.json files), a few hundred KiB per pod.
const stateFSOptions = "mode=0711,size=256m"

// mountState puts the state directory (runc's root and containerd's
// TMPDIR are inside it) on a tmpfs of its own, unless it is one already. A standard installation
// has both on tmpfs (/run/containerd, /run/runc): each sandbox and
// container creates dozens of files there, and on a disk filesystem every
// new inode costs 0.1 to 0.7 ms of CPU on this project's VMs (ext4's
// search for a free inode), a fifth of a pod's start-up CPU. Like /run,
// the state goes when the host stops (Shutdown unmounts it): what it
// describes, shims and containers, is gone then too.
//
// A state directory that holds files but is no mount (made by an older
// wharf, its shims possibly still running) is left as it is: hiding it
// would orphan them.
//
// On a tmpfs of ours, the OCI runtime runs from a read-only bind mount
// there (see bindRuntime); mountState reports whether it made one.
func mountState(p Paths, runtime string) (bool, error) {
	if err := os.MkdirAll(p.State, 0o711); err != nil {
		return false, fmt.Errorf("state dir: %w", err)
	}
	mounted, err := mountinfo.IsMountPoint(p.State)
	if err != nil {
		return false, fmt.Errorf("state dir: %w", err)
	}
	if !mounted && !olderState(p) {
		if err := syscall.Mount("tmpfs", p.State, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, stateFSOptions); err != nil {
			return false, fmt.Errorf("mount tmpfs on %s: %w", p.State, err)
		}
		mounted = true
	}
	if mounted {
		// Shared: what a containerd in a mount namespace of its own
		// mounts here shows in the host's (see hiddenHierarchy).
		if err := syscall.Mount("", p.State, "", syscall.MS_SHARED, ""); err != nil {
			return false, fmt.Errorf("share %s: %w", p.State, err)
		}
	}
	for _, d := range []string{p.RuncRoot, p.TempDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return false, fmt.Errorf("state dir: %w", err)
		}
	}
	if !mounted {
		return false, nil
	}
	if err := bindRuntime(runtime, sealedRuntime(p, runtime)); err != nil {
		return false, err
	}
	return true, nil
}

// clonedBinaryEnv tells runc and crun that the binary they run from
// cannot be written to, so they need not copy themselves first.
const clonedBinaryEnv = "_LIBCONTAINER_CLONED_BINARY=1"

// sealedRuntime is where the OCI runtime runs from on a state tmpfs of
// ours.
func sealedRuntime(p Paths, runtime string) string {
	return filepath.Join(p.State, "bin", filepath.Base(runtime))
}

// bindRuntime makes dst a read-only bind mount of the runtime binary src.
// runc and crun guard against a container overwriting their binary
// through /proc/self/exe (CVE-2019-5736) by copying themselves into a
// sealed memfd and executing that, on every call: four times per pod,
// a fifth of their CPU time here. They skip the copy when the binary is
// on a read-only mount and clonedBinaryEnv is set, the protection runc's
// documentation gives for that case.
func bindRuntime(src, dst string) error {
	if mounted, err := mountinfo.IsMountPoint(dst); err != nil || mounted {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("runtime binary: %w", err)
	}
	if err := os.WriteFile(dst, nil, 0o500); err != nil {
		return fmt.Errorf("runtime binary: %w", err)
	}
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	if err := syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
		syscall.Unmount(dst, syscall.MNT_DETACH)
		return fmt.Errorf("make %s read-only: %w", dst, err)
	}
	return nil
}

// olderState says whether the state dir holds files but is no mount: an
// older wharf's, left alone (see mountState).
func olderState(p Paths) bool {
	if mounted, err := mountinfo.IsMountPoint(p.State); err != nil || mounted {
		return false
	}
	entries, err := os.ReadDir(p.State)
	return err == nil && len(entries) > 0
}

// isMountPoint says whether dir is the mount point of a mount.
// shareDir makes dir a shared mount point (a bind mount of itself unless
// it is a mount point already): mounts made below it in the host's mount
// namespace propagate to the namespaces copied from it afterwards, such
// as a containerd's. Shutdown unmounts it with the rest of the state dir.
func shareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("shared dir: %w", err)
	}
	mounted, err := mountinfo.IsMountPoint(dir)
	if err != nil {
		return fmt.Errorf("shared dir %s: %w", dir, err)
	}
	if !mounted {
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
	}
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		return fmt.Errorf("share %s: %w", dir, err)
	}
	return nil
}
