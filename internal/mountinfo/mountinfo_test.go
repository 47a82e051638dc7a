package mountinfo

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	if got := unescape(`/tmp/a\040b\134c`); got != `/tmp/a b\c` {
		t.Errorf("unescape = %q", got)
	}
	paths := []string{"/s", "/s/a/b", "/s/a", "/s/c/d/e"}
	SortDeepestFirst(paths)
	if paths[0] != "/s/c/d/e" || paths[len(paths)-1] != "/s" {
		t.Errorf("deepest first: %v", paths)
	}
}

func TestRead(t *testing.T) {
	mounts, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	root := false
	for _, m := range mounts {
		root = root || m.MountPoint == "/"
	}
	if !root {
		t.Errorf("no mount of / among %d mounts", len(mounts))
	}
}

// TestRemoveAllRefusesMounts: nothing is removed through a mount.
func TestRemoveAllRefusesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "m")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(sub, syscall.MNT_DETACH)
	os.WriteFile(filepath.Join(sub, "theirs"), []byte("x"), 0o644)
	if err := RemoveAll(dir); err == nil {
		t.Fatal("RemoveAll through a mount succeeded")
	}
	if _, err := os.Stat(filepath.Join(sub, "theirs")); err != nil {
		t.Errorf("a file below the mount went: %v", err)
	}
	if err := syscall.Unmount(sub, 0); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
}

func TestIsMountPoint(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want bool
	}{
		{"/", true},
		{"/proc", true},
		{t.TempDir(), false},
	} {
		got, err := IsMountPoint(tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("IsMountPoint(%s) = %v, %v; want %v", tc.dir, got, err, tc.want)
		}
	}
}
