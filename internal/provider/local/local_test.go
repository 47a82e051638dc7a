package local

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	cfg := testConfig(t)
	first := newTestProvider(t, cfg)
	providertest.Run(t, func(t *testing.T) provider.Provider { return newTestProvider(t, cfg) }, providertest.Options{
		HostOff:     func(t *testing.T, h provider.Host) { checkOff(t, first, h) },
		HostGone:    func(t *testing.T, h provider.Host) { checkGone(t, first, h) },
		ServicePort: cfg.ServicePort,
		Isolated:    true,
	})
}

// TestHostPlumbing checks what the suite cannot see from outside: the
// namespace's settings, the cgroups and limits, the host CIDR.
func TestHostPlumbing(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx := context.Background()
	network := p.network
	a := network.Addr().As4()
	hostCIDR := netip.PrefixFrom(netip.AddrFrom4([4]byte{a[0], a[1], a[2], 64}), 28)
	c := provider.ClusterRef{Namespace: "t", Name: "plumb", UID: "0123456789abcdef"}
	spec := provider.HostSpec{
		Cluster: c, Name: "plumb-node-0", Role: provider.RoleWorker, CPU: "500m", Memory: "64Mi",
		HostCIDR: hostCIDR.String(), Args: []string{providertest.HelperCommand, "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"},
	}
	t.Cleanup(func() { p.DeleteHost(ctx, c, spec.Name) })
	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// The host CIDR is a range on the bridge's network, not a subnet of
	// its own: its first address is a host's like any other.
	if want := hostCIDR.Addr().String(); h.Address != want {
		t.Errorf("address %s, want %s (the first of host CIDR %s)", h.Address, want, hostCIDR)
	}
	n := p.namesFor(c, spec.Name)
	r, err := readRecord(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	// The process runs in <root>/wharf in every hierarchy.
	data, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if path := line[strings.LastIndexByte(line, ':')+1:]; path != n.cgroupRoot+"/wharf" {
			t.Errorf("host process cgroup %q, want %s/wharf", line, n.cgroupRoot)
		}
	}
	for file, want := range map[string]string{
		"/sys/fs/cgroup/cpu" + n.cgroupRoot + "/cpu.cfs_quota_us":         "50000",
		"/sys/fs/cgroup/memory" + n.cgroupRoot + "/memory.limit_in_bytes": strconv.Itoa(64 << 20),
	} {
		if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q (%v), want %s", file, got, err, want)
		}
	}
	checkNamespace(t, p, n, h.Address)

	// A host CIDR outside the provider network is refused.
	bad := spec
	bad.Name, bad.HostCIDR = "plumb-node-1", "192.168.0.0/28"
	t.Cleanup(func() { p.DeleteHost(ctx, c, bad.Name) })
	if _, err := p.CreateHost(ctx, bad); err == nil {
		t.Errorf("CreateHost with host CIDR %s outside %s succeeded", bad.HostCIDR, network)
	}
}

func checkNamespace(t *testing.T, p *Provider, n names, addr string) {
	t.Helper()
	ns, err := netns.GetFromPath(n.netnsPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"lo", peerName} {
		link, err := h.LinkByName(name)
		if err != nil || link.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
			t.Errorf("%s in %s: not up (%v)", name, n.netns, err)
		}
	}
	eth, _ := h.LinkByName(peerName)
	addrs, _ := h.AddrList(eth, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != addr+"/"+strconv.Itoa(p.network.Bits()) {
		t.Errorf("addresses of %s: %v, want %s/%d", peerName, addrs, addr, p.network.Bits())
	}
	routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
	var def bool
	for _, r := range routes {
		def = def || (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.String() == p.ServiceAddress()
	}
	if !def {
		t.Errorf("no default route via %s in %s: %v", p.ServiceAddress(), n.netns, routes)
	}
	err = nsrun.In(ns, func() error {
		for file, want := range map[string]string{"ip_forward": "1", "conf/all/rp_filter": "0", "conf/eth0/rp_filter": "0"} {
			got, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4", file))
			if err != nil || strings.TrimSpace(string(got)) != want {
				t.Errorf("%s in %s = %q (%v), want %s", file, n.netns, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHost measures making a host (namespace, veth, cgroups, the
// process started) and deleting it (kill, cleanup, namespace gone).
func BenchmarkHost(b *testing.B) {
	cfg := testConfig(b)
	p := newTestProvider(b, cfg)
	ctx := context.Background()
	c := provider.ClusterRef{Namespace: "t", Name: "bench", UID: "fedcba9876543210"}
	var create, del time.Duration
	for i := 0; b.Loop(); i++ {
		spec := provider.HostSpec{Cluster: c, Name: "bench-node-" + strconv.Itoa(i), Role: provider.RoleWorker,
			Args: []string{providertest.HelperCommand, "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
		start := time.Now()
		if _, err := p.CreateHost(ctx, spec); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := p.DeleteHost(ctx, c, spec.Name); err != nil {
			b.Fatal(err)
		}
		create, del = create+mid.Sub(start), del+time.Since(mid)
	}
	b.ReportMetric(float64(create.Microseconds())/1000/float64(b.N), "create-ms/op")
	b.ReportMetric(float64(del.Microseconds())/1000/float64(b.N), "delete-ms/op")
}

// TestRecovery: a host whose process died and whose veth went is made
// whole by CreateHost; a host whose record is gone is still deleted.
func TestRecovery(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "recover", UID: "aabbccddeeff0011"}
	spec := provider.HostSpec{Cluster: c, Name: "recover-node-0", Role: provider.RoleWorker,
		Args: []string{providertest.HelperCommand, "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
	t.Cleanup(func() { p.DeleteHost(context.Background(), c, spec.Name) })
	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	n := p.namesFor(c, spec.Name)
	r, err := readRecord(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(r.PID, syscall.SIGKILL)
	if err := deleteVeth(n); err != nil {
		t.Fatal(err)
	}
	for r.alive() {
		sleepOrFail(t, ctx, "host process %d does not die", r.PID)
	}
	if hosts, err := p.ListHosts(ctx, c); err != nil || len(hosts) != 1 || hosts[0].Running {
		t.Errorf("ListHosts after the process died = %+v, %v; want it not running", hosts, err)
	}
	again, err := p.CreateHost(ctx, spec)
	if err != nil || !again.Running || again.Address != h.Address {
		t.Fatalf("CreateHost after a crash = %+v, %v; want %s running", again, err, h.Address)
	}
	// The helper answers through the new veth.
	url := "http://" + h.Address + ":7777/report"
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		sleepOrFail(t, ctx, "%s: %v", url, err)
	}

	if err := os.Remove(filepath.Join(n.dir, recordFile)); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteHost(ctx, c, spec.Name); err != nil {
		t.Fatal(err)
	}
	checkGone(t, p, h)
}

// TestResumeHosts: a host whose process died (a machine restart) starts
// again from its record, files kept; a powered-off one stays off.
func TestResumeHosts(t *testing.T) {
	cfg := testConfig(t)
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "resume", UID: "aabbccddeeff0022"}
	spec := func(name string) provider.HostSpec {
		return provider.HostSpec{Cluster: c, Name: name, Role: provider.RoleWorker, Files: map[string][]byte{"token": []byte("t")},
			Args: []string{providertest.HelperCommand, "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
	}
	for _, name := range []string{"resume-node-0", "resume-node-1"} {
		t.Cleanup(func() { p.DeleteHost(context.Background(), c, name) })
		if _, err := p.CreateHost(ctx, spec(name)); err != nil {
			t.Fatal(err)
		}
	}
	died := p.namesFor(c, "resume-node-0")
	r, err := readRecord(died.dir)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(r.PID, syscall.SIGKILL)
	for r.alive() {
		sleepOrFail(t, ctx, "host process %d does not die", r.PID)
	}
	if err := p.PowerOff(ctx, c, "resume-node-1"); err != nil {
		t.Fatal(err)
	}

	resumed, err := p.ResumeHosts(ctx)
	if err != nil || len(resumed) != 1 || resumed[0] != c.Key()+"/resume-node-0" {
		t.Fatalf("ResumeHosts = %v, %v; want the host whose process died only", resumed, err)
	}
	hosts, err := p.ListHosts(ctx, c)
	if err != nil || len(hosts) != 2 || !hosts[0].Running || hosts[1].Running {
		t.Errorf("hosts after ResumeHosts: %+v, %v; want node-0 running, node-1 off", hosts, err)
	}
	if r, err := readRecord(died.dir); err != nil || len(r.Spec.Files) != 1 || r.Spec.Files[0] != "token" {
		t.Errorf("resumed record %+v, %v: want its files kept", r, err)
	}
}
