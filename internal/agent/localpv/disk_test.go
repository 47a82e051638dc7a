package localpv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"wharf.dev/wharf/internal/mountinfo"
)

// needRoot skips tests that mount and attach loop devices.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts loop devices")
	}
	for _, tool := range []string{"mkfs.ext4", "losetup", "resize2fs", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// fill writes to path until the filesystem is full and returns the error
// that stopped it and how much was written.
func fill(t *testing.T, path string) (int64, error) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return n, err
		}
		if err := f.Sync(); err != nil {
			return n, err
		}
	}
}

func statfs(t *testing.T, path string) (size, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}

// TestDisk makes a real volume, fills it to ENOSPC, grows it online,
// fills it again, and removes it: mount and loop device gone.
func TestDisk(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := NewDisk(t.TempDir())
	const name = "pvc-test"
	t.Cleanup(func() { _ = d.Remove(ctx, name) })
	if err := d.Create(ctx, name, 32<<20); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.IsMountPoint(d.Path(name)); !ok {
		t.Fatal("not mounted")
	}
	img, err := os.Stat(d.image(name))
	if err != nil {
		t.Fatal(err)
	}
	// Preallocated: the image's blocks are the host's already.
	if blocks := img.Sys().(*syscall.Stat_t).Blocks * 512; blocks < 32<<20 {
		t.Errorf("image holds %d bytes of the host's disk, want 32 MiB preallocated", blocks)
	}
	size, _ := statfs(t, d.Path(name))
	if size > 32<<20 || size < 24<<20 {
		t.Errorf("filesystem of %d bytes for a 32 MiB volume", size)
	}
	n, err := fill(t, filepath.Join(d.Path(name), "a"))
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling stopped at %d bytes with %v, want ENOSPC", n, err)
	}
	if n > 32<<20 {
		t.Errorf("wrote %d bytes into a 32 MiB volume", n)
	}
	// Idempotent: a second Create only checks the mount.
	if err := d.Create(ctx, name, 32<<20); err != nil {
		t.Fatal(err)
	}

	if err := d.Expand(ctx, name, 64<<20); err != nil {
		t.Fatal(err)
	}
	grown, free := statfs(t, d.Path(name))
	if grown < size+28<<20 || free < 28<<20 {
		t.Errorf("after growing to 64 MiB: filesystem %d bytes, %d free", grown, free)
	}
	if m, err := fill(t, filepath.Join(d.Path(name), "b")); !errors.Is(err, unix.ENOSPC) || m < 28<<20 {
		t.Errorf("second fill: %d bytes, %v", m, err)
	}
	data, err := os.ReadFile(filepath.Join(d.Path(name), "a"))
	if err != nil || int64(len(data)) < n-1<<20 || data[0] != 0xa5 {
		t.Errorf("first file after the resize: %d bytes, %v", len(data), err)
	}

	image := d.image(name)
	if err := d.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.IsMountPoint(d.Path(name)); ok {
		t.Error("still mounted")
	}
	if dev, err := loopOf(ctx, image); err == nil {
		t.Errorf("loop device %s still attached", dev)
	}
	if names, _ := d.List(); len(names) != 0 {
		t.Errorf("left %v", names)
	}
}

// TestDiskNoSpace: a volume larger than the disk fails at once, leaving
// nothing.
func TestDiskNoSpace(t *testing.T) {
	needRoot(t)
	d := NewDisk(t.TempDir())
	free, err := d.Free()
	if err != nil {
		t.Fatal(err)
	}
	err = d.Create(context.Background(), "pvc-huge", free+1<<40)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "bytes available") {
		t.Fatalf("err %v, want ErrNoSpace", err)
	}
	if names, _ := d.List(); len(names) != 0 {
		t.Errorf("left %v", names)
	}
}

// TestDiskCrash: what a crash leaves (a half-made image; a volume whose
// mount is gone, as after a reboot, with or without its loop device) is
// mounted again or removed whole.
func TestDiskCrash(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	d := NewDisk(t.TempDir())
	t.Cleanup(func() {
		for _, n := range []string{"pvc-half", "pvc-whole", "pvc-loop"} {
			_ = d.Remove(ctx, n)
		}
	})
	// Killed while formatting: only image.new.
	if err := os.MkdirAll(filepath.Join(d.dir, "pvc-half"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.image("pvc-half")+".new", []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d.Exists("pvc-half") {
		t.Error("a half-made volume exists")
	}
	// Rebooted: made and written, no longer mounted.
	if err := d.Create(ctx, "pvc-whole", 16<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path("pvc-whole"), "kept"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, "umount", d.Path("pvc-whole")); err != nil {
		t.Fatal(err)
	}
	// Killed between attaching a loop device and mounting it.
	if err := d.Create(ctx, "pvc-loop", 16<<20); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, "umount", d.Path("pvc-loop")); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, "losetup", "-f", d.image("pvc-loop")); err != nil {
		t.Fatal(err)
	}

	// The half-made one can be made again, whole.
	if err := d.Create(ctx, "pvc-half", 16<<20); err != nil {
		t.Fatalf("making a volume again after a crash: %v", err)
	}
	if err := d.Mount(ctx, "pvc-whole"); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(d.Path("pvc-whole"), "kept")); err != nil || string(data) != "data" {
		t.Errorf("after mounting again: %q, %v", data, err)
	}
	image := d.image("pvc-loop")
	if err := d.Remove(ctx, "pvc-loop"); err != nil {
		t.Fatal(err)
	}
	if dev, err := loopOf(ctx, image); err == nil {
		t.Errorf("loop device %s left attached", dev)
	}
}

// BenchmarkDiskCreate times making (and then removing) a 1 GiB volume:
// fallocate, mkfs.ext4 with lazy init, mount.
func BenchmarkDiskCreate(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ctx := context.Background()
	d := NewDisk(b.TempDir())
	for b.Loop() {
		if err := d.Create(ctx, "pvc-bench", 1<<30); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := d.Remove(ctx, "pvc-bench"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
