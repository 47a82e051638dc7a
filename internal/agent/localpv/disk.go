package localpv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/mountinfo"
)

// Disk keeps volumes under one directory, one per name, each an ext4
// filesystem in a preallocated image file, mounted through a loop device:
//
//	<dir>/<name>/image   the filesystem (exactly the volume's size)
//	<dir>/<name>/mount   where it is mounted: the PV's spec.local.path
//
// A volume is created in <dir>/<name>/image.new and renamed to image once
// it is formatted: an image is either whole or absent, so a crash while
// creating leaves a directory that Remove cleans up.
type Disk struct{ dir string }

// Dir is where an agent with state dir stateDir keeps its volumes. The
// agent makes it a shared mount point before containerd starts
// (containerd.Config.SharedDirs): containerd lives in a mount namespace
// of its own, which must see the volumes mounted later.
func Dir(stateDir string) string { return filepath.Join(stateDir, "volumes") }

// NewDisk returns a Disk keeping volumes under dir.
func NewDisk(dir string) *Disk { return &Disk{dir: dir} }

// Path is the mount point of volume name.
func (d *Disk) Path(name string) string { return filepath.Join(d.dir, name, "mount") }

func (d *Disk) image(name string) string { return filepath.Join(d.dir, name, "image") }

// ErrNoSpace: the volume does not fit on the disk its directory lives on.
var ErrNoSpace = errors.New("not enough free space")

// Free is how many bytes a new volume can take on the disk under dir.
func (d *Disk) Free() (int64, error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", d.dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Exists reports whether volume name was created whole.
func (d *Disk) Exists(name string) bool {
	_, err := os.Stat(d.image(name))
	return err == nil
}

// Create makes volume name of size bytes and mounts it, unless it exists
// (then it is only mounted). The space is allocated up front: a volume
// never fails for want of host space after it was created.
func (d *Disk) Create(ctx context.Context, name string, size int64) error {
	if d.Exists(name) {
		return d.Mount(ctx, name)
	}
	free, err := d.Free()
	if err != nil {
		return err
	}
	if size > free {
		return fmt.Errorf("volume %s of %d bytes: %w on the node (%d bytes available)", name, size, ErrNoSpace, free)
	}
	vdir := filepath.Join(d.dir, name)
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return err
	}
	tmp := d.image(name) + ".new"
	os.Remove(tmp) // left by a crash
	if err := allocate(tmp, size, true); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("volume %s: %w", name, err)
	}
	// nodiscard: mke2fs would otherwise punch the preallocated blocks out
	// again; lazy init: formatting costs milliseconds, not seconds.
	if err := run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, d.image(name)); err != nil {
		return err
	}
	if err := d.Mount(ctx, name); err != nil {
		return err
	}
	// Any container user may write, as with an emptyDir.
	return os.Chmod(d.Path(name), 0o777)
}

func allocate(path string, size int64, create bool) error {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("allocate %d bytes: %w on the node", size, ErrNoSpace)
		}
		return fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	return f.Sync()
}

// Mount mounts volume name at its path unless it is mounted already.
func (d *Disk) Mount(ctx context.Context, name string) error {
	mnt := d.Path(name)
	if ok, err := mountinfo.IsMountPoint(mnt); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	// A loop device still attached (a container holds the filesystem,
	// or a crash came between attaching and mounting) is mounted again:
	// a second one on the same image would be a second, corrupting,
	// mount of the filesystem.
	if dev, err := loopOf(ctx, d.image(name)); err == nil {
		return wrapVolume(name, run(ctx, "mount", "-t", "ext4", dev, mnt))
	}
	// util-linux sets the loop device to detach itself when unmounted.
	if err := run(ctx, "mount", "-t", "ext4", "-o", "loop", d.image(name), mnt); err != nil {
		return wrapVolume(name, err)
	}
	// Direct I/O from the loop device to the image: no second copy of
	// the data in the page cache, and writes as fast as the host's
	// (docs/storage-local.md). Where the host filesystem refuses it, the
	// volume works buffered.
	if dev, err := loopOf(ctx, d.image(name)); err == nil {
		_ = run(ctx, "losetup", "--direct-io=on", dev)
	}
	return nil
}

// ErrResizePending: the volume grew but its filesystem could not, online,
// and is in use by a pod; it grows once no pod uses it.
var ErrResizePending = errors.New("the filesystem is resized once no pod uses the volume")

// Expand grows volume name to size bytes: the image first, then the loop
// device's idea of it, then the filesystem, online. Online growth needs
// CAP_SYS_RESOURCE (ext4's resize ioctl); without it (some VMs and
// containers) the filesystem grows offline if no pod uses it, and Expand
// fails with ErrResizePending otherwise.
func (d *Disk) Expand(ctx context.Context, name string, size int64) error {
	fi, err := os.Stat(d.image(name))
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if fi.Size() < size {
		free, err := d.Free()
		if err != nil {
			return err
		}
		if size-fi.Size() > free {
			return fmt.Errorf("volume %s to %d bytes: %w on the node (%d bytes available)", name, size, ErrNoSpace, free)
		}
		if err := allocate(d.image(name), size, false); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
	}
	if err := d.Mount(ctx, name); err != nil {
		return err
	}
	dev, err := loopOf(ctx, d.image(name))
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if err := run(ctx, "losetup", "-c", dev); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	err = run(ctx, "resize2fs", dev)
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		return wrapVolume(name, err)
	}
	busy, err := usedElsewhere(dev, d.Path(name))
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if busy {
		return fmt.Errorf("volume %s: online resize not permitted here: %w", name, ErrResizePending)
	}
	if err := run(ctx, "umount", d.Path(name)); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if dev, err := loopOf(ctx, d.image(name)); err == nil {
		_ = run(ctx, "losetup", "-d", dev)
	}
	// resize2fs wants a freshly checked filesystem when it is offline.
	err = run(ctx, "e2fsck", "-f", "-p", d.image(name))
	if err == nil {
		err = run(ctx, "resize2fs", d.image(name))
	}
	return errors.Join(wrapVolume(name, err), d.Mount(ctx, name))
}

func wrapVolume(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("volume %s: %w", name, err)
}

// usedElsewhere reports whether a mount namespace other than this
// process's mounts dev other than at mnt (where the shared volumes
// directory propagates it): a container's bind of the volume.
func usedElsewhere(dev, mnt string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return false, err
	}
	id := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	seen := map[string]bool{self: true}
	for _, p := range procs {
		ns, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns", "mnt"))
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		data, err := os.ReadFile(filepath.Join("/proc", p.Name(), "mountinfo"))
		if err != nil {
			continue // gone meanwhile
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[2] == id && f[4] != mnt {
				return true, nil
			}
		}
	}
	return false, nil
}

// Size is the size of volume name's image.
func (d *Disk) Size(name string) (int64, error) {
	fi, err := os.Stat(d.image(name))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Remove unmounts volume name (its loop device goes with the mount) and
// deletes its data. Removing what is not there is no error.
func (d *Disk) Remove(ctx context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, "/") {
		return fmt.Errorf("bad volume name %q", name)
	}
	mnt := d.Path(name)
	ok, err := mountinfo.IsMountPoint(mnt)
	if err != nil {
		return err
	}
	if ok {
		if err := run(ctx, "umount", mnt); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
	}
	// A loop device left attached without a mount (a crash between the
	// two) holds the image's blocks: detach it.
	if dev, err := loopOf(ctx, d.image(name)); err == nil {
		_ = run(ctx, "losetup", "-d", dev)
	}
	if err := os.RemoveAll(filepath.Join(d.dir, name)); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// List returns the names of the volumes under the directory, whole or
// not.
func (d *Disk) List() ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// loopOf finds the loop device backing image.
func loopOf(ctx context.Context, image string) (string, error) {
	out, err := exec.CommandContext(ctx, "losetup", "-n", "-O", "NAME", "-j", image).Output()
	if err != nil {
		return "", fmt.Errorf("losetup -j %s: %w", image, err)
	}
	dev := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if dev == "" {
		return "", fmt.Errorf("no loop device backs %s", image)
	}
	return dev, nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
