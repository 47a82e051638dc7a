//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A test killed half-way (Ctrl-C, a CI timeout) cannot clean up: its
// services, hosts and `wharf up` clusters keep running. Every test dir
// holds the pid of the test process that made it; the next run purges
// the dirs of test processes that are gone, with the same commands a
// user has (`wharf service stop --purge`, `wharf down --purge`).

// ownerFile names the test process that made a test dir.
const ownerFile = "test.pid"

// testDir makes a short dir (containerd's sockets live deep below it)
// owned by this test process, removed when the test ends.
func testDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// purgeStale purges the test dirs whose test process is gone: services
// (<dir>/s, made by newService) and clusters (<dir>/state, by upCluster).
func purgeStale() {
	for _, prefix := range []string{"ws", "wu"} {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
		for _, dir := range dirs {
			data, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue // not a test dir, or one still being made
			}
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
					continue // its test still runs
				}
			}
			args := []string{"service", "stop", "--purge", "--state-dir", filepath.Join(dir, "s")}
			if prefix == "wu" {
				args = []string{"down", "--purge", "--state-dir", filepath.Join(dir, "state")}
			}
			out, err := exec.Command(wharfBin, args...).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "e2e: purging what a killed test left in %s: %v\n%s", dir, err, out)
				continue
			}
			fmt.Fprintf(os.Stderr, "e2e: purged what a killed test left in %s\n", dir)
			os.RemoveAll(dir)
		}
	}
}

// TestPurgeStale: a service whose test was killed (its owner process is
// gone) is stopped and purged by the next run; one of a live test is not.
func TestPurgeStale(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command(wharfBin, "service", "stop", "--purge", "--state-dir", dir+"/s").Run()
		os.RemoveAll(dir)
	})
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := &svc{t: t, stateDir: dir + "/s", listen: "0.0.0.0:0"}
	stale.start()
	live := startService(t)

	purgeStale()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the killed test's dir %s is still there (%v)", dir, err)
	}
	if _, err := os.Stat(live.stateDir); err != nil {
		t.Errorf("the live test's service was purged: %v", err)
	}
}
