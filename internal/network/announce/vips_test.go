package announce

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/nsrun"
)

// The tests below run in namespaces of their own (critest.NewNetNS):
// nothing touches the machine's interfaces or leaves it.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// ip runs ip(8) in the namespace at ns.
func ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	args = append([]string{"-n", filepath.Base(ns)}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// handle returns a netlink handle of the namespace at ns.
func handle(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// host32s returns the /32s on link: address → label.
func host32s(t *testing.T, h *netlink.Handle, link string) map[string]string {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); ones == 32 {
			if a.Scope != unix.RT_SCOPE_UNIVERSE {
				t.Errorf("%s: scope %d, want global", a.IPNet, a.Scope)
			}
			out[a.IP.String()] = a.Label
		}
	}
	return out
}

func newVIPs(t *testing.T, ns, nodeIP, stateFile string) *VIPs {
	t.Helper()
	v, err := NewVIPs(VIPConfig{NodeIP: netip.MustParseAddr(nodeIP), StateFile: stateFile, NetNS: ns, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func set(t *testing.T, v *VIPs, addrs ...string) {
	t.Helper()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	if err := v.Set(context.Background(), as); err != nil {
		t.Fatalf("Set(%v): %v", addrs, err)
	}
}

// TestVIPs: Set adds labelled /32s and removes only its own; a VIPs over
// the same state file removes the stale ones; RemoveRecorded the rest.
func TestVIPs(t *testing.T) {
	needRoot(t)
	ns := critest.NewNetNS(t)
	// A veth pair, not a dummy link: this machine's kernel has none.
	ip(t, ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ip(t, ns, "addr", "add", "10.50.0.1/24", "dev", "d0")
	ip(t, ns, "link", "set", "d0", "up")
	ip(t, ns, "link", "set", "d1", "up")
	h := handle(t, ns)
	state := filepath.Join(t.TempDir(), "vips.json")
	check := func(step string, want map[string]string) {
		t.Helper()
		if diff := cmp.Diff(want, host32s(t, h, "d0")); diff != "" {
			t.Errorf("%s: /32s on d0 (-want +got):\n%s", step, diff)
		}
	}

	v := newVIPs(t, ns, "10.50.0.1", state)
	set(t, v, "10.50.0.10", "10.50.0.11")
	check("first Set", map[string]string{"10.50.0.10": "d0:lb", "10.50.0.11": "d0:lb"})

	// Someone else's: the kernel labels it with the link's name.
	ip(t, ns, "addr", "add", "10.50.0.12/32", "dev", "d0")
	set(t, v, "10.50.0.10", "10.50.0.12")
	check("fewer, one of someone else", map[string]string{"10.50.0.10": "d0:lb", "10.50.0.12": "d0"})
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("10.50.0.10")}, v.Held(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("Held (-want +got):\n%s", diff)
	}
	set(t, v, "10.50.0.10", "10.50.0.11")
	v.Close() // the agent stops; its addresses stay

	v = newVIPs(t, ns, "10.50.0.1", state)
	set(t, v, "10.50.0.11")
	check("restarted", map[string]string{"10.50.0.11": "d0:lb", "10.50.0.12": "d0"})
	v.Close()

	if err := nsrun.At(ns, func() error { return RemoveRecorded(state) }); err != nil {
		t.Fatal(err)
	}
	check("RemoveRecorded", map[string]string{"10.50.0.12": "d0"})
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after RemoveRecorded: %v", err)
	}
}

// TestVIPsLoopback: on `wharf up` the node's link is lo: addresses go
// there and nothing is sent.
func TestVIPsLoopback(t *testing.T) {
	needRoot(t)
	ns := critest.NewNetNS(t)
	h := handle(t, ns)
	state := filepath.Join(t.TempDir(), "vips.json")
	v := newVIPs(t, ns, "127.0.0.1", state)
	set(t, v, "10.60.0.1")
	if diff := cmp.Diff(map[string]string{"10.60.0.1": "lo:lb"}, host32s(t, h, "lo")); diff != "" {
		t.Errorf("/32s on lo (-want +got):\n%s", diff)
	}
	if err := v.Announce(netip.MustParseAddr("10.60.0.1")); err != nil {
		t.Errorf("Announce: %v", err)
	}
	if err := v.Announce(netip.MustParseAddr("10.60.0.2")); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Announce of an address not held: %v, want ErrNotHeld", err)
	}
	if v.sock != -1 {
		t.Error("packet socket opened for lo")
	}
	if err := v.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if got := host32s(t, h, "lo"); len(got) > 0 {
		t.Errorf("/32s on lo after RemoveAll: %v", got)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after RemoveAll: %v", err)
	}
}

func TestLabel(t *testing.T) {
	for _, tc := range []struct{ link, want string }{
		{"eth0", "eth0:lb"},
		{"lo", "lo:lb"},
		{"abcdefghijkl", "abcdefghijkl:lb"}, // 15 bytes
		{"abcdefghijklm", ""},
	} {
		if got := label(tc.link); got != tc.want {
			t.Errorf("label(%q) = %q, want %q", tc.link, got, tc.want)
		}
	}
}

func TestGARPFrame(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	got := parseARP(garpFrame(mac, netip.MustParseAddr("10.1.2.3")))
	want := arpFrame{dst: broadcast.String(), op: 1, sha: mac.String(), spa: "10.1.2.3", tpa: "10.1.2.3"}
	if diff := cmp.Diff(&want, got, cmp.AllowUnexported(arpFrame{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// testHost is a namespace whose eth0 is on a bridge shared with the
// other test hosts, as on the local provider.
type testHost struct {
	name, ns string
	h        *netlink.Handle
	eth0     netlink.Link
	ip       string
}

// newSegment makes n hosts 10.77.0.1… on a bridge in a namespace of its
// own.
func newSegment(t *testing.T, names ...string) []*testHost {
	t.Helper()
	fabric := critest.NewNetNS(t)
	ip(t, fabric, "link", "add", "br0", "type", "bridge")
	ip(t, fabric, "link", "set", "br0", "up")
	var hosts []*testHost
	for i, name := range names {
		ns := critest.NewNetNS(t)
		addr := fmt.Sprintf("10.77.0.%d", i+1)
		ip(t, fabric, "link", "add", "h-"+name, "type", "veth", "peer", "name", "eth0", "netns", filepath.Base(ns))
		ip(t, fabric, "link", "set", "h-"+name, "master", "br0", "up")
		ip(t, ns, "addr", "add", addr+"/24", "dev", "eth0")
		ip(t, ns, "link", "set", "eth0", "up")
		h := handle(t, ns)
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, &testHost{name: name, ns: ns, h: h, eth0: eth0, ip: addr})
	}
	return hosts
}

// echo answers UDP on port 7777 with the host's name.
func (h *testHost) echo(t *testing.T) {
	var pc net.PacketConn
	if err := nsrun.At(h.ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", ":7777")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(h.name), from)
		}
	}()
}

// ask sends to addr:7777 from the host and returns who answered. The
// socket is unconnected: the answer comes from the host's own address.
func (h *testHost) ask(t *testing.T, addr string) string {
	t.Helper()
	var pc net.PacketConn
	if err := nsrun.At(h.ns, func() (err error) {
		pc, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 7777))
	buf := make([]byte, 64)
	for range 30 {
		pc.WriteTo([]byte("who"), to)
		pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := pc.ReadFrom(buf); err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("%s: no answer from %s", h.name, addr)
	return ""
}

// neighbour returns the host's neighbour entry's MAC for addr, "" if none.
func (h *testHost) neighbour(t *testing.T, addr string) string {
	t.Helper()
	neighs, err := h.h.NeighList(h.eth0.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.IP.String() == addr && n.HardwareAddr != nil {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

func (h *testHost) mac() string { return h.eth0.Attrs().HardwareAddr.String() }

type arpFrame struct {
	at                 time.Time
	dst, sha, spa, tpa string
	op                 uint16
}

func parseARP(b []byte) *arpFrame {
	if len(b) < 42 || binary.BigEndian.Uint16(b[12:]) != unix.ETH_P_ARP {
		return nil
	}
	spa, _ := netip.AddrFromSlice(b[28:32])
	tpa, _ := netip.AddrFromSlice(b[38:42])
	return &arpFrame{
		dst: net.HardwareAddr(b[0:6]).String(), op: binary.BigEndian.Uint16(b[20:]),
		sha: net.HardwareAddr(b[22:28]).String(), spa: spa.String(), tpa: tpa.String(),
	}
}

// capture records the ARP frames the host's eth0 receives, through an
// AF_PACKET socket in its namespace; it returns what it saw so far.
func (h *testHost) capture(t *testing.T) func() []arpFrame {
	t.Helper()
	var fd int
	if err := nsrun.At(h.ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: h.eth0.Attrs().Index})
	}); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "arp") // non-blocking: Close ends Read
	var mu sync.Mutex
	var seen []arpFrame
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1600)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if a := parseARP(buf[:n]); a != nil {
				a.at = time.Now()
				mu.Lock()
				seen = append(seen, *a)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return func() []arpFrame {
		mu.Lock()
		defer mu.Unlock()
		return append([]arpFrame(nil), seen...)
	}
}

// TestVIPsFailover is the acceptance test: when an address moves from
// host a to host b, host c's neighbour entry for it switches to b's MAC
// from b's gratuitous ARP alone, without waiting for the entry to expire,
// and a's pending repeats do not pull it back.
func TestVIPsFailover(t *testing.T) {
	needRoot(t)
	hosts := newSegment(t, "a", "b", "c")
	a, b, c := hosts[0], hosts[1], hosts[2]
	const vip = "10.77.0.100"
	a.echo(t)
	b.echo(t)
	dir := t.TempDir()
	va := newVIPs(t, a.ns, a.ip, filepath.Join(dir, "a.json"))
	vb := newVIPs(t, b.ns, b.ip, filepath.Join(dir, "b.json"))

	set(t, va, vip)
	if got := c.ask(t, vip); got != "a" {
		t.Fatalf("c reached %q at %s, want a", got, vip)
	}
	if got := c.neighbour(t, vip); got != a.mac() {
		t.Fatalf("c's neighbour entry for %s: %q, want a's %s", vip, got, a.mac())
	}
	frames := c.capture(t)

	set(t, va) // a gives it up
	start := time.Now()
	set(t, vb, vip)
	eventually(t, "c's neighbour entry is b's", func() bool { return c.neighbour(t, vip) == b.mac() })
	t.Logf("from Set on b to c's neighbour entry on b: %v", time.Since(start))
	if got := c.ask(t, vip); got != "b" {
		t.Errorf("c reached %q at %s after failover, want b", got, vip)
	}

	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	if got := c.neighbour(t, vip); got != b.mac() {
		t.Errorf("c's neighbour entry for %s 1.5 s after failover: %q, want b's %s", vip, got, b.mac())
	}
	var garps []string
	for _, f := range frames() {
		if f.spa != vip || f.at.Before(start) {
			continue
		}
		switch {
		case f.sha == a.mac():
			t.Errorf("a sent ARP for %s after it gave it up: %+v", vip, f)
		case f.sha == b.mac() && f.op == 1 && f.tpa == vip && f.dst == broadcast.String():
			garps = append(garps, f.at.Sub(start).Round(time.Millisecond).String())
		}
	}
	t.Logf("b's gratuitous ARP seen by c at %v after Set", garps)
	if len(garps) != len(garpDelays) {
		t.Errorf("c saw %d gratuitous ARP frames from b, want %d", len(garps), len(garpDelays))
	}
}
