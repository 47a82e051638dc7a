package containerd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"wharf.dev/wharf/internal/mountinfo"
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
			if _, err := mountState(p, testRuntime); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"files of an older wharf", func(t *testing.T, p Paths) {
			mkdir(t, filepath.Join(p.State, "io.containerd.runtime.v2.task"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PathsFor(t.TempDir())
			t.Cleanup(func() { mountinfo.UnmountAll(p.Dir) })
			tc.prepare(t, p)
			sealed, err := mountState(p, testRuntime)
			if err != nil {
				t.Fatal(err)
			}
			mounted, err := mountinfo.IsMountPoint(p.State)
			if err != nil {
				t.Fatal(err)
			}
			if mounted != tc.wantMounted || sealed != tc.wantMounted {
				t.Errorf("state dir mounted: %v, runtime sealed: %v, want %v", mounted, sealed, tc.wantMounted)
			}
			if sealed {
				checkSealed(t, sealedRuntime(p, testRuntime))
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
			if err := mountinfo.UnmountAll(p.Dir); err != nil {
				t.Fatal(err)
			}
			if mounted, _ := mountinfo.IsMountPoint(p.State); mounted {
				t.Error("state dir still mounted after UnmountAll")
			}
		})
	}
}

// testRuntime stands for an OCI runtime binary: any executable that
// prints something does.
const testRuntime = "/bin/true"

// checkSealed checks that bin runs, is the runtime's binary and cannot be
// written to, even by root.
func checkSealed(t *testing.T, bin string) {
	t.Helper()
	if out, err := exec.Command(bin).CombinedOutput(); err != nil {
		t.Errorf("run %s: %v: %s", bin, err, out)
	}
	want, _ := os.ReadFile(testRuntime)
	if got, err := os.ReadFile(bin); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is not a copy of %s: %v", bin, testRuntime, err)
	}
	f, err := os.OpenFile(bin, os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		t.Errorf("%s opened for writing", bin)
	} else if !errors.Is(err, syscall.EROFS) {
		t.Errorf("open %s for writing: %v, want EROFS", bin, err)
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
	env := []string{"PATH=/bin", "TMPDIR=/tmp", "XDG_RUNTIME_DIR=/run/user/0", "_LIBCONTAINER_CLONED_BINARY=1", "HOME=/root"}
	for _, tc := range []struct {
		sealed bool
		want   []string
	}{
		{false, []string{"PATH=/bin", "HOME=/root", "TMPDIR=/s/state/tmp"}},
		{true, []string{"PATH=/bin", "HOME=/root", "TMPDIR=/s/state/tmp", "_LIBCONTAINER_CLONED_BINARY=1"}},
	} {
		got := daemonEnv(env, "/s/state/tmp", tc.sealed)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("daemonEnv(sealed %v) = %q, want %q", tc.sealed, got, tc.want)
		}
	}
}
