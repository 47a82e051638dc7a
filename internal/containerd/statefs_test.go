package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMountState(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tc := range []struct {
		name        string
		prepare     func(t *testing.T, p Paths)
		wantMounted bool
	}{
		{"new state dir", func(*testing.T, Paths) {}, true},
		{"empty state dir", func(t *testing.T, p Paths) { mkdir(t, p.State) }, true},
		{"already mounted", func(t *testing.T, p Paths) {
			if err := mountState(p); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"files of an older wharf", func(t *testing.T, p Paths) {
			mkdir(t, filepath.Join(p.State, "io.containerd.runtime.v2.task"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PathsFor(t.TempDir())
			t.Cleanup(func() { unmountAll(p.Dir) })
			tc.prepare(t, p)
			if err := mountState(p); err != nil {
				t.Fatal(err)
			}
			mounted, err := isMountPoint(p.State)
			if err != nil {
				t.Fatal(err)
			}
			if mounted != tc.wantMounted {
				t.Errorf("state dir mounted: %v, want %v", mounted, tc.wantMounted)
			}
			if mounted {
				var st syscall.Statfs_t
				if err := syscall.Statfs(p.State, &st); err != nil {
					t.Fatal(err)
				}
				if st.Type != tmpfsMagic {
					t.Errorf("state dir is on filesystem type %#x, want tmpfs", st.Type)
				}
			}
			for _, d := range []string{p.RuncRoot, p.TempDir} {
				if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
					t.Errorf("%s: %v", d, err)
				}
			}
			if err := unmountAll(p.Dir); err != nil {
				t.Fatal(err)
			}
			if mounted, _ := isMountPoint(p.State); mounted {
				t.Error("state dir still mounted after unmountAll")
			}
		})
	}
}

// tmpfsMagic is TMPFS_MAGIC, the f_type statfs reports for a tmpfs.
const tmpfsMagic = 0x01021994

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonEnv(t *testing.T) {
	got := daemonEnv([]string{"PATH=/bin", "TMPDIR=/tmp", "XDG_RUNTIME_DIR=/run/user/0", "HOME=/root"}, "/s/state/tmp")
	want := []string{"PATH=/bin", "HOME=/root", "TMPDIR=/s/state/tmp"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("daemonEnv = %q, want %q", got, want)
	}
}
