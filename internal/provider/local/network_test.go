package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/network/netalloc"
	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
	"wharf.dev/wharf/internal/testwait"
)

func helperSpec(c provider.ClusterRef, name string, listen string) provider.HostSpec {
	return provider.HostSpec{Cluster: c, Name: name, Role: provider.RoleWorker,
		Args: []string{providertest.HelperCommand, "--name", name, "--listen", listen, "--state-dir", "$(STATE_DIR)"}}
}

// answers says whether the host's helper answers from the machine.
func answers(h provider.Host) (bool, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + h.Address + ":7777/report")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK, string(body)
}

// TestNetworkRepair: a bridge deleted under running hosts leaves them
// unreachable, never routed out of the default interface (the guard
// route); a new provider over the same state (a restarted service)
// repairs it, and so does a running Watch.
func TestNetworkRepair(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "repair", UID: "1122334455667788"}
	spec := helperSpec(c, "repair-node-0", "$(HOST_IP):7777")
	t.Cleanup(func() { p.DeleteHost(context.Background(), c, spec.Name) })
	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the host to answer", func() (bool, string) { return answers(h) })

	deleteBridge := func() {
		t.Helper()
		br, err := netlink.LinkByName(cfg.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkDel(br); err != nil {
			t.Fatal(err)
		}
	}
	deleteBridge()
	// Unreachable at once, by the guard route, not sent to the default
	// gateway.
	rs, err := netlink.RouteGet(netip.MustParseAddr(h.Address).AsSlice())
	if err == nil {
		t.Errorf("route to %s with the bridge gone: %v, want unreachable", h.Address, rs)
	}
	if !routes.Guarded(nil, netip.MustParsePrefix(cfg.Network)) {
		t.Errorf("no guard route for %s", cfg.Network)
	}

	restarted := newTestProvider(t, cfg)
	if err := restarted.RepairNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the host to answer after RepairNetwork", func() (bool, string) { return answers(h) })

	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- restarted.Watch(watchCtx) }()
	// Watch subscribes asynchronously: delete until a repair is seen.
	deleteBridge()
	testwait.For(t, "Watch to repair the network", func() (bool, string) { return answers(h) })
	stop()
	if err := <-done; err != nil {
		t.Errorf("Watch: %v", err)
	}
}

// TestHostFaults: a host whose process exits at once, or is killed by the
// OOM killer, is reported with why; waiting for it would be pointless.
func TestHostFaults(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "fault", UID: "99887766554433"}
	for _, tc := range []struct {
		name   string
		spec   provider.HostSpec
		reason string
	}{
		// An address the host does not have: its listen fails.
		{"bind", helperSpec(c, "fault-node-0", "203.0.113.1:7777"), "cannot assign requested address"},
		{"oom", func() provider.HostSpec {
			s := helperSpec(c, "fault-node-1", "$(HOST_IP):7777")
			s.Memory, s.Args = "16Mi", append(s.Args, "--allocate-mib", "64")
			return s
		}(), "OOM killer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { p.DeleteHost(context.Background(), c, tc.spec.Name) })
			if _, err := p.CreateHost(ctx, tc.spec); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "the host's fault", func() (bool, string) {
				hosts, err := p.ListHosts(ctx, c)
				if err != nil {
					return false, err.Error()
				}
				for _, h := range hosts {
					if h.Name == tc.spec.Name {
						return !h.Running && strings.Contains(h.Fault, tc.reason), fmt.Sprintf("%+v", h)
					}
				}
				return false, "no such host"
			})
			// Powered off on purpose is no fault.
			if err := p.PowerOff(ctx, c, tc.spec.Name); err != nil {
				t.Fatal(err)
			}
			hosts, _ := p.ListHosts(ctx, c)
			for _, h := range hosts {
				if h.Name == tc.spec.Name && h.Fault != "" {
					t.Errorf("a host powered off has a fault: %q", h.Fault)
				}
			}
		})
	}
}

// TestIPNetnsInterleaved: `ip netns add/delete` between the provider's
// own namespace mounts leaves every host deletable (iproute2's convention:
// /var/run/netns a shared mount point of its own before any namespace is
// mounted there).
func TestIPNetnsInterleaved(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "ipnetns", UID: "5566778899aabb"}
	ipNetns := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip netns %v: %v: %s", args, err, out)
		}
	}
	other := "wharf-test-" + filepath.Base(cfg.StateDir)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", other).Run() })

	a, b := helperSpec(c, "ipnetns-node-0", "$(HOST_IP):7777"), helperSpec(c, "ipnetns-node-1", "$(HOST_IP):7777")
	ha, err := p.CreateHost(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	ipNetns("add", other)
	hb, err := p.CreateHost(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteHost(ctx, c, a.Name); err != nil {
		t.Fatalf("delete a host made before `ip netns add`: %v", err)
	}
	checkGone(t, p, ha)
	ipNetns("delete", other)
	if err := p.DeleteHost(ctx, c, b.Name); err != nil {
		t.Fatalf("delete a host made after `ip netns add`: %v", err)
	}
	checkGone(t, p, hb)
}

// TestClaimNetwork: a second owner gets another network and bridge; a
// network asked for that another holds is refused, naming the holder; a
// claim is kept across calls.
func TestClaimNetwork(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	dir := t.TempDir()
	second := Config{StateDir: filepath.Join(dir, "hosts"), Owner: "wharf provider test second " + t.Name()}
	n, err := ClaimNetwork(ctx, filepath.Join(dir, "network.json"), "", second)
	if err != nil {
		t.Fatal(err)
	}
	second.Network, second.Bridge = n.CIDR, n.Bridge
	t.Cleanup(func() {
		if err := newTestProvider(t, second).RemoveNetwork(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if n.CIDR == cfg.Network || n.Bridge == cfg.Bridge {
		t.Errorf("second claim %+v shares with the first (%s on %s)", n, cfg.Network, cfg.Bridge)
	}
	again, err := ClaimNetwork(ctx, filepath.Join(dir, "network.json"), "", second)
	if err != nil || again != n {
		t.Errorf("claim again = %+v, %v; want %+v", again, err, n)
	}
	third := Config{StateDir: filepath.Join(dir, "third"), Owner: "wharf provider test third " + t.Name()}
	_, err = ClaimNetwork(ctx, filepath.Join(dir, "third.json"), cfg.Network, third)
	if err == nil || !strings.Contains(err.Error(), cfg.Owner) {
		t.Errorf("claiming %s, held by %q: %v; want a refusal naming it", cfg.Network, cfg.Owner, err)
	}
	snap, err := netalloc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if alias, ok := snap.LinkAlias(n.Bridge); !ok || alias != second.Owner {
		t.Errorf("bridge %s alias %q (exists %v), want %q", n.Bridge, alias, ok, second.Owner)
	}
}
