package clusterservice

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestListenAddress: the first start chooses a free port (7443 when free)
// and later starts keep it; an explicit address wins and is kept.
func TestListenAddress(t *testing.T) {
	o, err := Options{StateDir: t.TempDir()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// Hold 7443 if we can: the choice must then be another free port.
	if l, err := net.Listen("tcp", "0.0.0.0:7443"); err == nil {
		defer l.Close()
	}
	first, err := o.listenAddress()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(first, ":7443") || !strings.HasPrefix(first, "0.0.0.0:") {
		t.Errorf("first choice %q: want a free port of 0.0.0.0 other than the taken 7443", first)
	}
	again, err := o.listenAddress()
	if err != nil || again != first {
		t.Errorf("second start chose %q (%v), want the first's %q", again, err, first)
	}
	o.Listen = "127.0.0.1:0"
	if got, err := o.listenAddress(); err != nil || got != o.Listen {
		t.Errorf("explicit %q: got %q, %v", o.Listen, got, err)
	}
	o.Listen = ""
	if got, _ := o.listenAddress(); got != "127.0.0.1:0" {
		t.Errorf("after an explicit address, a start without one chose %q", got)
	}
}

// TestPurgeOfNothing: purge of a state dir that does not exist is a
// no-op (e2e tests purge real services).
func TestPurgeOfNothing(t *testing.T) {
	var out strings.Builder
	if err := Purge(context.Background(), &out, Options{StateDir: t.TempDir() + "/none"}); err != nil || !strings.Contains(out.String(), "nothing to purge") {
		t.Errorf("purge of nothing: %v %q", err, out.String())
	}
}
