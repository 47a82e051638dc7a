package localpv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"wharf.dev/wharf/internal/mountinfo"
)

// TestCrashHelper is the process TestCrashRecovery kills: it creates a
// volume in $LOCALPV_CRASH_DIR.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("LOCALPV_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	if err := NewDisk(dir).Create(context.Background(), "pvc-uid-crash", 256<<20); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery kills (SIGKILL) a process creating a volume at
// several points, then starts a provisioner on what is left: a claim
// gone leaves no volume, no mount and no loop device; a claim still
// waiting gets its volume whole.
func TestCrashRecovery(t *testing.T) {
	needRoot(t)
	for _, delay := range []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 8 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, time.Second} {
		for _, waiting := range []bool{false, true} {
			t.Run(fmt.Sprintf("after %v, claim waiting %v", delay, waiting), func(t *testing.T) {
				dir := t.TempDir()
				disk := NewDisk(dir)
				t.Cleanup(func() { _ = disk.Remove(context.Background(), "pvc-uid-crash") })
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
				cmd.Env = append(os.Environ(), "LOCALPV_CRASH_DIR="+dir)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(delay)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()

				var objs []runtime.Object
				if waiting {
					objs = append(objs, class("local", false, v1.PersistentVolumeReclaimDelete), claim("crash", "n1", "256Mi"))
				}
				h := newHarness(t, disk, objs...)
				if err := h.p.Sweep(h.ctx); err != nil {
					t.Fatal(err)
				}
				mounted, err := mountinfo.IsMountPoint(disk.Path("pvc-uid-crash"))
				if err != nil {
					t.Fatal(err)
				}
				if !waiting {
					if names, _ := disk.List(); len(names) != 0 || mounted || loopsUnder(t, dir) != "" {
						t.Fatalf("left volumes %v, mounted %v, loop devices %q", names, mounted, loopsUnder(t, dir))
					}
					return
				}
				h.until("the PV", func() bool { return h.pv("pvc-uid-crash") != nil })
				if mounted, _ := mountinfo.IsMountPoint(disk.Path("pvc-uid-crash")); !mounted || !disk.Exists("pvc-uid-crash") {
					t.Fatalf("volume whole %v, mounted %v", disk.Exists("pvc-uid-crash"), mounted)
				}
				size, _ := statfs(t, disk.Path("pvc-uid-crash"))
				if size < 200<<20 {
					t.Errorf("filesystem of %d bytes for 256 MiB", size)
				}
			})
		}
	}
}

func loopsUnder(t *testing.T, dir string) string {
	t.Helper()
	out, _ := exec.Command("losetup", "-a").Output()
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, dir) {
			found = append(found, l)
		}
	}
	return strings.Join(found, "; ")
}
