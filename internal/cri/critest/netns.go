package critest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"testing"

	"wharf.dev/wharf/internal/network/nsrun"
)

// NewNetNS creates a named network namespace (/var/run/netns/NAME) with
// its loopback up, deleted when the test ends; it returns the file path.
// A test's containerd runs there, so its bridge, pod routes and iptables
// rules never touch the machine's own network.
func NewNetNS(t testing.TB) string {
	t.Helper()
	buf := make([]byte, 4)
	rand.Read(buf)
	name := "wharf-t-" + hex.EncodeToString(buf)
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
