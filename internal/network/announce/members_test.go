package announce

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// member is a running Members; stop ends its Run and waits for it.
type member struct {
	*Members
	stop func()
}

func startMember(t *testing.T, cfg MembersConfig) *member {
	t.Helper()
	cfg.Bind = netip.AddrPortFrom(loopback, 0)
	cfg.Logger = testLogger(t).With("node", cfg.Self, "cluster", cfg.Cluster)
	m, err := NewMembers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run of %s: %v", cfg.Self, err)
			}
		}
	}
	t.Cleanup(stop)
	return &member{m, stop}
}

func (m *member) addr() netip.AddrPort {
	return netip.AddrPortFrom(loopback, uint16(m.Port()))
}

// meshed gives each member all the others as peers.
func meshed(ms map[string]*member) {
	peers := map[string]netip.AddrPort{}
	for name, m := range ms {
		peers[name] = m.addr()
	}
	for _, m := range ms {
		m.SetPeers(peers)
	}
}

// eventually polls cond every millisecond until it holds (it returns how long
// that took) or 5 s have passed (it fails the test).
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s: not after %v", what, time.Since(start))
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}

func signalled(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestMembers: three nodes see each other, one that stops is seen dead,
// heartbeats of another cluster do not revive it, and it is alive again
// when it restarts (on another port, as an agent does).
func TestMembers(t *testing.T) {
	const cluster = "c1"
	ms := map[string]*member{}
	for _, name := range []string{"a", "b", "c"} {
		ms[name] = startMember(t, MembersConfig{Self: name, Cluster: cluster})
	}
	meshed(ms)
	a, b := ms["a"], ms["b"]
	all := map[string]bool{"a": true, "b": true, "c": true}

	// Past the grace of new peers only heard ones are alive.
	time.Sleep(DefaultTimeout + DefaultInterval)
	for name, m := range ms {
		if diff := cmp.Diff(all, m.AliveSet()); diff != "" {
			t.Errorf("%s: alive (-want +got):\n%s", name, diff)
		}
	}

	drain(a.Changes())
	ms["c"].stop()
	took := eventually(t, "c dead for a and b", func() bool { return !a.Alive("c") && !b.Alive("c") })
	t.Logf("stopped c seen dead after %v (Timeout+Interval = %v)", took, DefaultTimeout+DefaultInterval)
	if !signalled(a.Changes()) {
		t.Error("a's Changes not signalled when c died")
	}
	if !a.Alive("a") || !a.Alive("b") {
		t.Errorf("a: alive %v, want a and b", a.AliveSet())
	}

	// A node of another cluster named c, sending to a and b.
	other := startMember(t, MembersConfig{Self: "c", Cluster: "c2"})
	other.SetPeers(map[string]netip.AddrPort{"a": a.addr(), "b": b.addr()})
	time.Sleep(DefaultTimeout)
	if a.Alive("c") || b.Alive("c") {
		t.Error("c alive from another cluster's heartbeats")
	}
	other.stop()

	ms["c"] = startMember(t, MembersConfig{Self: "c", Cluster: cluster})
	meshed(ms)
	took = eventually(t, "c alive again for a and b", func() bool { return a.Alive("c") && b.Alive("c") })
	t.Logf("restarted c seen alive after %v", took)
	time.Sleep(DefaultTimeout + DefaultInterval)
	if diff := cmp.Diff(all, ms["c"].AliveSet()); diff != "" {
		t.Errorf("restarted c: alive (-want +got):\n%s", diff)
	}
}

// TestMembersNewPeer: a new peer is alive for Timeout, then dead if it
// never answers; a removed peer is gone; Self is always alive.
func TestMembersNewPeer(t *testing.T) {
	m := startMember(t, MembersConfig{Self: "a", Cluster: "c1", Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond})
	drain(m.Changes())
	// Port 9 (discard) of 127.0.0.1: nobody there.
	m.SetPeers(map[string]netip.AddrPort{"a": m.addr(), "ghost": netip.AddrPortFrom(loopback, 9)})
	if !m.Alive("ghost") || !signalled(m.Changes()) {
		t.Errorf("new peer: alive %v, want ghost alive and a change", m.AliveSet())
	}
	took := eventually(t, "ghost dead", func() bool { return !m.Alive("ghost") })
	t.Logf("unheard new peer dead after %v", took)
	if !signalled(m.Changes()) {
		t.Error("no change when ghost died")
	}
	m.SetPeers(nil)
	if diff := cmp.Diff(map[string]bool{"a": true}, m.AliveSet()); diff != "" {
		t.Errorf("no peers: alive (-want +got):\n%s", diff)
	}
	if m.Alive("ghost") || !m.Alive("a") {
		t.Errorf("Alive: ghost %v, a %v; want false, true", m.Alive("ghost"), m.Alive("a"))
	}
}
