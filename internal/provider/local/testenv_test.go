package local

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/network/netalloc"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
)

func TestMain(m *testing.M) {
	providertest.RunHelperIfAsked()
	os.Exit(m.Run())
}

// requireHost skips tests that need root, cgroup v1 with a freezer and
// nsenter.
func requireHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		t.Skip("needs the cgroup v1 freezer")
	}
	for _, bin := range []string{"nsenter", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
}

// testConfig is a provider config of the test's own: a fresh state dir
// and a network claimed the way a service claims one (a free /24 and a
// bridge of its own, so the tests never touch a running service's hosts
// or other traffic), the test binary as the hosts' program, and a free
// service port. Hosts left by a failed test and the network go when the
// test ends.
func testConfig(t testing.TB) Config {
	t.Helper()
	requireHost(t)
	port, err := netalloc.FreePort("0.0.0.0", 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		StateDir:    t.TempDir(),
		Owner:       "wharf provider test " + t.Name(),
		ServicePort: port,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	n, err := ClaimNetwork(context.Background(), filepath.Join(cfg.StateDir, "network.json"), "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network, cfg.Bridge = n.CIDR, n.Bridge
	t.Cleanup(func() {
		p, err := New(cfg)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		recs, _ := p.allRecords()
		for _, r := range recs {
			t.Errorf("cleanup: host %s of cluster %s was left", r.Name, r.Cluster.Key())
			if err := p.DeleteHost(context.Background(), r.Cluster, r.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := p.RemoveNetwork(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// processesUsing returns the pids of processes whose command line
// mentions s (a host's state dir: the helper gets it as an argument).
func processesUsing(s string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}

// cgroupsOf returns the host's cgroup root in every hierarchy that has it.
func cgroupsOf(t testing.TB, rel string) []string {
	hs, err := cgroups.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.Dir, rel)); err == nil {
			out = append(out, filepath.Join(h.Dir, rel))
		}
	}
	return out
}

// checkOff: no process of the host, its plumbing and state still there.
func checkOff(t *testing.T, p *Provider, h provider.Host) {
	t.Helper()
	n := p.namesFor(h.Cluster, h.Name)
	if pids := processesUsing(n.dir); len(pids) > 0 {
		t.Errorf("host %s is off, and processes %v still run", h.Name, pids)
	}
	if pids := cgroups.SubtreePids(n.cgroupRoot); len(pids) > 0 {
		t.Errorf("host %s is off, and its cgroups hold %v", h.Name, pids)
	}
	for _, path := range []string{n.netnsPath(), filepath.Join(n.dir, recordFile), filepath.Join(n.dir, "providertest/starts")} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("host %s is off: %v", h.Name, err)
		}
	}
	if _, err := netlink.LinkByName(n.veth); err != nil {
		t.Errorf("host %s is off: veth %s: %v", h.Name, n.veth, err)
	}
}

// checkGone: nothing of the host is left.
func checkGone(t *testing.T, p *Provider, h provider.Host) {
	t.Helper()
	n := p.namesFor(h.Cluster, h.Name)
	if pids := processesUsing(n.dir); len(pids) > 0 {
		t.Errorf("host %s was deleted, and processes %v still run", h.Name, pids)
	}
	// The cluster's own cgroup level goes with its last host.
	others, err := p.ListHosts(context.Background(), h.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	cgroup, paths := n.cgroupRoot, []string{n.netnsPath(), n.dir}
	if len(others) == 0 {
		cgroup = filepath.Dir(n.cgroupRoot)
	}
	for _, path := range paths {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("host %s was deleted, and %s is left (%v)", h.Name, path, err)
		}
	}
	if _, err := netlink.LinkByName(n.veth); err == nil {
		t.Errorf("host %s was deleted, and its veth %s is left", h.Name, n.veth)
	}
	if left := cgroupsOf(t, cgroup); len(left) > 0 {
		t.Errorf("host %s was deleted, and cgroups are left: %v", h.Name, left)
	}
	recs, err := p.allRecords()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Address == h.Address {
			t.Errorf("host %s was deleted, and its address %s is still taken by %s", h.Name, h.Address, r.Name)
		}
	}
}
