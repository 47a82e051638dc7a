//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/testserver"
)

// TestTeardownAlwaysFinishes: a delete that cannot remove a host says
// what and keeps the host's record (nothing orphaned); a service killed
// in the middle of a create, and that failed cluster, are both removed by
// `wharf service stop --purge`, which leaves nothing on the machine.
func TestTeardownAlwaysFinishes(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "stuck", "--template", "k8s-local", "--node-count", "1", "--wait")
	key := "stuck-" + s.field("stuck", "uuid")[:8]

	// A file no one may remove in a worker's state dir: its delete fails.
	var pinned string
	for _, rec := range hostRecords(t, s) {
		if strings.HasSuffix(rec.name, "-node-0") {
			pinned = filepath.Join(rec.dir, "pinned")
		}
	}
	if pinned == "" {
		t.Fatal("no worker host found")
	}
	if err := os.WriteFile(pinned, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", pinned).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", pinned).Run() })
	s.must("cluster", "delete", "stuck")
	// The controller retries a failed delete (DELETE_IN_PROGRESS again,
	// then DELETE_FAILED): the reason is read with the status it goes with.
	testserver.WaitFor(t, "DELETE_FAILED naming the host and why", 90*time.Second, func() (bool, error) {
		out := s.must("cluster", "show", "stuck", "-f", "value", "-c", "status", "-c", "status_reason")
		ok := strings.Contains(out, "DELETE_FAILED") && strings.Contains(out, "stuck-node-0") && strings.Contains(out, "operation not permitted")
		return ok, fmt.Errorf("%s", out)
	})
	if _, err := os.Stat(filepath.Join(filepath.Dir(pinned), "host.json")); err != nil {
		t.Errorf("the host that could not be deleted lost its record: %v", err)
	}

	// Another create, and the service killed in the middle of it.
	s.must("cluster", "create", "killed", "--template", "k8s-local", "--node-count", "2")
	testserver.WaitFor(t, "a host of the second cluster", 30*time.Second, func() (bool, error) {
		for _, rec := range hostRecords(t, s) {
			if strings.HasPrefix(rec.name, "killed-") {
				return true, nil
			}
		}
		return false, nil
	})
	pid, err := readPid(filepath.Join(s.stateDir, "service.pid"))
	if err != nil {
		t.Fatal(err)
	}
	killPidFileProcess(t, pid)

	// Purge cannot finish while the pinned file stays: it says so and
	// keeps the state dir; once the file may go, purge finishes.
	network, err := local.ReadNetwork(filepath.Join(s.stateDir, "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.wharf("service", "stop", "--state-dir", s.stateDir, "--purge")
	if err == nil || !strings.Contains(out, "state dir stays") || !strings.Contains(out, "stuck-node-0") {
		t.Errorf("purge with an undeletable host: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Dir(pinned)); err != nil {
		t.Errorf("purge lost the record of the host it could not delete: %v", err)
	}
	if out, err := exec.Command("chattr", "-i", pinned).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	out = s.must("service", "stop", "--state-dir", s.stateDir, "--purge")
	testserver.Contains(t, out, "deleted host stuck-node-0", "purged "+s.stateDir)
	if left := serviceTraces(s.stateDir, network); len(left) > 0 {
		t.Errorf("purge left: %v", left)
	}
	if left := hostTraces(key); len(left) > 0 {
		t.Errorf("purge left hosts of the failed delete: %v", left)
	}
}

type hostRecord struct{ name, dir string }

// hostRecords lists the local hosts of a service from their records.
func hostRecords(t *testing.T, s *svc) []hostRecord {
	t.Helper()
	lp, err := local.New(local.Config{StateDir: filepath.Join(s.stateDir, "hosts")})
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := lp.AllHosts(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []hostRecord
	for _, h := range hosts {
		out = append(out, hostRecord{name: h.Name, dir: h.StateDir})
	}
	return out
}
