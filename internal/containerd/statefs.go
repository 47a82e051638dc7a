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
func mountState(p Paths) error {
	if err := os.MkdirAll(p.State, 0o711); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	mounted, err := isMountPoint(p.State)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !mounted && !olderState(p) {
		if err := syscall.Mount("tmpfs", p.State, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, stateFSOptions); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", p.State, err)
		}
		mounted = true
	}
	if mounted {
		// Shared: what a containerd in a mount namespace of its own
		// mounts here shows in the host's (see hiddenHierarchy).
		if err := syscall.Mount("", p.State, "", syscall.MS_SHARED, ""); err != nil {
			return fmt.Errorf("share %s: %w", p.State, err)
		}
	}
	for _, d := range []string{p.RuncRoot, p.TempDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	return nil
}

// olderState says whether the state dir holds files but is no mount: an
// older wharf's, left alone (see mountState).
func olderState(p Paths) bool {
	if mounted, err := isMountPoint(p.State); err != nil || mounted {
		return false
	}
	entries, err := os.ReadDir(p.State)
	return err == nil && len(entries) > 0
}

// isMountPoint says whether dir is the mount point of a mount.
func isMountPoint(dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	mounts, err := mountinfo.Read()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.MountPoint == abs {
			return true, nil
		}
	}
	return false, nil
}
