package routes

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/cri/critest"
)

// testNetNS returns a netlink handle of a fresh network namespace with a
// link 10.50.0.1/24 (so 10.50.0.0/24 is on-link), deleted when the
// test ends. Nothing here touches the machine's own routes.
func testNetNS(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ns, err := netns.GetFromPath(critest.NewNetNS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "d0"
	// A veth pair, not a dummy link: this machine's kernel has none.
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "d1"}); err != nil {
		t.Fatal(err)
	}
	d1, _ := h.LinkByName("d1")
	if err := h.LinkSetUp(d1); err != nil {
		t.Fatal(err)
	}
	d0, _ := h.LinkByName("d0")
	if err := h.AddrAdd(d0, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.50.0.1/24"))}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(d0); err != nil {
		t.Fatal(err)
	}
	// Routes of others: one apart, one on a destination a node claims.
	for _, r := range []struct {
		dst, via string
		proto    netlink.RouteProtocol
	}{{"10.244.9.0/24", "10.50.0.9", 4}, {"10.244.3.0/24", "10.50.0.8", 3}} {
		err := h.RouteAdd(&netlink.Route{Dst: ipNet(netip.MustParsePrefix(r.dst)), Gw: net.ParseIP(r.via), LinkIndex: d0.Attrs().Index, Protocol: r.proto})
		if err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// routesIn returns the namespace's routes of a protocol as "dst via gw".
func routesIn(t *testing.T, h *netlink.Handle, proto netlink.RouteProtocol) []string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST {
			continue // guards: guardsIn
		}
		out = append(out, r.Dst.String()+" via "+r.Gw.String())
	}
	slices.Sort(out)
	return out
}

func checkRoutes(t *testing.T, h *netlink.Handle, want ...string) {
	t.Helper()
	if got := routesIn(t, h, Protocol); !slices.Equal(got, want) {
		t.Errorf("our routes: %q, want %q", got, want)
	}
	others := append(routesIn(t, h, 3), routesIn(t, h, 4)...)
	if want := []string{"10.244.3.0/24 via 10.50.0.8", "10.244.9.0/24 via 10.50.0.9"}; !slices.Equal(others, want) {
		t.Errorf("others' routes: %q, want %q (untouched)", others, want)
	}
}

func TestApply(t *testing.T) {
	h := testNetNS(t)
	a := &applier{h: h, log: slog.Default(), skipped: map[netip.Prefix]string{}}
	steps := []struct {
		desired []Route
		want    []string
	}{
		{[]Route{
			route("10.244.1.0/24", "10.50.0.2", "b"),
			route("10.244.2.0/24", "10.50.0.3", "c"),
			route("10.244.3.0/24", "10.50.0.4", "d"),  // someone else's destination
			route("10.244.4.0/24", "172.16.0.1", "e"), // not on a link
		}, []string{"10.244.1.0/24 via 10.50.0.2", "10.244.2.0/24 via 10.50.0.3"}},
		// b moved, c left.
		{[]Route{route("10.244.1.0/24", "10.50.0.5", "b")}, []string{"10.244.1.0/24 via 10.50.0.5"}},
		{[]Route{route("10.244.1.0/24", "10.50.0.5", "b")}, []string{"10.244.1.0/24 via 10.50.0.5"}},
		{nil, nil},
	}
	for i, s := range steps {
		if err := a.apply(s.desired); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		checkRoutes(t, h, s.want...)
	}
}

var guards = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.96.0.0/12")}

func TestController(t *testing.T) {
	h := testNetNS(t)
	client := fake.NewClientset(node("a", "10.244.0.0/24", "10.50.0.1"), node("b", "10.244.1.0/24", "10.50.0.2"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- New(Config{NodeName: "a", Client: client, Netlink: h,
			ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"), Guards: guards}).Run(ctx)
	}()
	waitRoutes(t, ctx, h, "10.244.1.0/24 via 10.50.0.2")
	for _, g := range guards {
		if !Guarded(h, g) {
			t.Errorf("no guard route to %s", g)
		}
	}

	nodes := client.CoreV1().Nodes()
	if _, err := nodes.Create(ctx, node("c", "10.244.2.0/24", "10.50.0.3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, ctx, h, "10.244.1.0/24 via 10.50.0.2", "10.244.2.0/24 via 10.50.0.3")
	if _, err := nodes.Update(ctx, node("b", "10.244.1.0/24", "10.50.0.7"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nodes.Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, ctx, h, "10.244.1.0/24 via 10.50.0.7")
	checkRoutes(t, h, "10.244.1.0/24 via 10.50.0.7")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// waitRoutes waits until our routes are want (or the test's time is up).
func waitRoutes(t *testing.T, ctx context.Context, h *netlink.Handle, want ...string) {
	t.Helper()
	for !slices.Equal(routesIn(t, h, Protocol), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("our routes: %q, want %q", routesIn(t, h, Protocol), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestTwoClustersOneNamespace: two agents of different clusters in one
// namespace (two `wharf up` on one machine) each keep their own routes
// and guards, and neither removes the other's.
func TestTwoClustersOneNamespace(t *testing.T) {
	h := testNetNS(t)
	a := &applier{h: h, log: slog.Default(), scope: netip.MustParsePrefix("10.244.0.0/16"), skipped: map[netip.Prefix]string{}}
	b := &applier{h: h, log: slog.Default(), scope: netip.MustParsePrefix("10.245.0.0/16"), skipped: map[netip.Prefix]string{}}
	for _, g := range []string{"10.244.0.0/16", "10.245.0.0/16"} {
		if err := Guard(h, netip.MustParsePrefix(g)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.apply([]Route{route("10.244.1.0/24", "10.50.0.2", "a1")}); err != nil {
		t.Fatal(err)
	}
	if err := b.apply([]Route{route("10.245.1.0/24", "10.50.0.3", "b1"), route("10.244.7.0/24", "10.50.0.4", "stray")}); err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, h, "10.244.1.0/24 via 10.50.0.2", "10.245.1.0/24 via 10.50.0.3")
	if err := a.apply(nil); err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, h, "10.245.1.0/24 via 10.50.0.3")

	// The guards survive both appliers and make the rest of each range
	// unreachable, while a node's route still wins inside it.
	for _, c := range []struct {
		dst  string
		kind int
	}{{"10.244.99.9", unix.RTN_UNREACHABLE}, {"10.245.9.9", unix.RTN_UNREACHABLE}, {"10.245.1.9", unix.RTN_UNICAST}} {
		rs, err := h.RouteGet(net.ParseIP(c.dst))
		if c.kind == unix.RTN_UNREACHABLE {
			if err == nil {
				t.Errorf("route to %s: %v, want unreachable", c.dst, rs)
			}
			continue
		}
		if err != nil || len(rs) == 0 || rs[0].Type != c.kind {
			t.Errorf("route to %s: %v %v, want type %d", c.dst, rs, err, c.kind)
		}
	}
	for _, g := range []string{"10.244.0.0/16", "10.245.0.0/16"} {
		p := netip.MustParsePrefix(g)
		if !Guarded(h, p) {
			t.Errorf("guard of %s gone", g)
		}
		if err := Unguard(h, p); err != nil {
			t.Fatal(err)
		}
		if Guarded(h, p) {
			t.Errorf("guard of %s still there after Unguard", g)
		}
		if err := Unguard(h, p); err != nil {
			t.Errorf("Unguard twice: %v", err)
		}
	}
}
