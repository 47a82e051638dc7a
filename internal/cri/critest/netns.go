package critest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"wharf.dev/wharf/internal/network/nsrun"
)

// NewNetNS creates a named network namespace (/var/run/netns/NAME) with
// its loopback up, deleted when the test ends; it returns the file path.
// A test's containerd runs there, so its bridge, pod routes and iptables
// rules never touch the machine's own network. NAME carries the test
// process's PID: the first call of a process deletes the namespaces of
// test processes that died before their clean-up (a panic), unless
// something runs in them.
func NewNetNS(t testing.TB) string {
	t.Helper()
	sweepOnce.Do(func() { SweepNetNS(t) })
	buf := make([]byte, 4)
	rand.Read(buf)
	name := fmt.Sprintf("%s%d-%s", netnsPrefix, os.Getpid(), hex.EncodeToString(buf))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up in %s: %v: %s", name, err, out)
	}
	return "/var/run/netns/" + name
}

const netnsPrefix = "wharf-t-"

var sweepOnce sync.Once

// SweepNetNS deletes the test namespaces whose process is gone and in
// which nothing runs.
func SweepNetNS(t testing.TB) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		pid, _, ok2 := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if !ok || !ok2 || err != nil || n <= 0 || syscall.Kill(n, 0) != syscall.ESRCH {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", e.Name()).Output(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			continue
		}
		if out, err := exec.Command("ip", "netns", "delete", e.Name()).CombinedOutput(); err != nil {
			t.Logf("stale test namespace %s: %v: %s", e.Name(), err, out)
		}
	}
}

// DialIn connects to addr from inside the network namespace at path.
func DialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := nsrun.At(path, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}
