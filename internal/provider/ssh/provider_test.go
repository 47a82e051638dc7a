package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
	"wharf.dev/wharf/internal/provider/ssh/hostctl"
)

// TestMain lets the test binary stand in for wharf on the lab's
// machines: the provider copies it there, runs `hostctl …` with it, and
// the hosts run the conformance suite's helper.
func TestMain(m *testing.M) {
	providertest.RunHelperIfAsked()
	if len(os.Args) > 1 && os.Args[1] == "hostctl" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := hostctl.Main(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostctl:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	l := newLab(t, 4)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	providertest.Run(t, func(t *testing.T) provider.Provider {
		p, err := New(l.config(t, stateDir, self))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}, providertest.Options{
		MaxHosts: len(l.machines),
		HostOff: func(t *testing.T, h provider.Host) {
			if left := l.machineOf(h.Address).processes(); len(left) > 0 {
				t.Errorf("host %s is off, but its machine runs %v", h.Name, left)
			}
		},
		HostGone: func(t *testing.T, h provider.Host) {
			checkGone(t, l, h)
		},
	})
	if t.Failed() {
		return
	}
	if recs, _ := filepath.Glob(filepath.Join(stateDir, "hosts", "*", "*")); len(recs) > 0 {
		t.Errorf("records left: %v", recs)
	}
	if entries, _ := os.ReadDir(l.baseDir); len(entries) > 0 {
		t.Errorf("base dir %s not empty: %v", l.baseDir, entries)
	}
}

// checkGone checks that nothing of a deleted host is left: processes in
// its machine, its directory, mounts, its cgroups.
func checkGone(t *testing.T, l *lab, h provider.Host) {
	t.Helper()
	if left := l.machineOf(h.Address).processes(); len(left) > 0 {
		t.Errorf("host %s deleted, but its machine runs %v", h.Name, left)
	}
	dir := filepath.Dir(h.StateDir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("host %s deleted, but %s is there (%v)", h.Name, dir, err)
	}
	groups, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + h.Cluster.Key() + "/" + h.Name)
	if len(groups) > 0 {
		t.Errorf("host %s deleted, but cgroups are left: %v", h.Name, groups)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), dir) {
		t.Errorf("host %s deleted, but mounts below %s are left", h.Name, dir)
	}
}

// TestHostKeys: without known hosts a machine's key is pinned on first
// use; a machine presenting another key later is refused.
func TestHostKeys(t *testing.T) {
	l := newLab(t, 1)
	self, _ := os.Executable()
	cfg := l.config(t, t.TempDir(), self)
	cfg.KnownHosts = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := provider.ClusterRef{Namespace: "default", Name: "keys", UID: "0123456789"}
	if _, err := p.ListHosts(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := p.run(ctx, cfg.Hosts[0], "check", "true", nil); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	pinned, err := os.ReadFile(filepath.Join(cfg.StateDir, "known_hosts"))
	if err != nil || string(pinned) != string(l.known) {
		t.Fatalf("known_hosts after first use = %q (%v), want %q", pinned, err, l.known)
	}

	// The machine presents a key other than the pinned one: refused,
	// whether pinned on first use or given as known hosts.
	_, wrongPriv, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewSignerFromKey(wrongPriv)
	line := []byte(knownhosts.Line([]string{l.machines[0].addr}, wrong.PublicKey()) + "\n")
	write(t, filepath.Join(cfg.StateDir, "known_hosts"), line)
	for _, known := range [][]byte{nil, line} {
		cfg.KnownHosts = known
		p2, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p2.run(ctx, cfg.Hosts[0], "check", "true", nil)
		p2.Close()
		if err == nil || !strings.Contains(err.Error(), "key mismatch") {
			t.Errorf("connection with a wrong pinned key (known hosts given: %v): %v, want a key mismatch", known != nil, err)
		}
	}
}

// TestReconnect: a pooled connection that breaks (the machine's sshd
// restarted, the machine rebooted) is replaced on the next call. Also:
// the default service address is the one the machines see.
func TestReconnect(t *testing.T) {
	l := newLab(t, 1)
	self, _ := os.Executable()
	cfg := l.config(t, t.TempDir(), self)
	cfg.ServiceAddress = ""
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.ServiceAddress() != l.gateway {
		t.Errorf("default ServiceAddress() = %q, want the lab's bridge address %s", p.ServiceAddress(), l.gateway)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.run(ctx, cfg.Hosts[0], "check", "true", nil); err != nil {
		t.Fatal(err)
	}
	if n := l.machines[0].cutConnections(); n == 0 {
		t.Fatal("no connection to cut")
	}
	out, err := p.run(ctx, cfg.Hosts[0], "check", "echo ok", nil)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("after the connection broke: %q, %v", out, err)
	}
}

// TestUnreachableMachine: a host goes to the next machine when the first
// free one cannot be reached, and the dead one is not retried at once.
func TestUnreachableMachine(t *testing.T) {
	l := newLab(t, 1)
	self, _ := os.Executable()
	cfg := l.config(t, t.TempDir(), self)
	dead := l.machines[0].addr + ":2222" // nothing listens there
	cfg.Hosts = []string{dead, l.machines[0].addr}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "default", Name: "dead", UID: randHex(8)}
	spec := provider.HostSpec{Cluster: c, Name: "dead-node-0", Role: provider.RoleWorker,
		Args: []string{providertest.HelperCommand, "--name", "dead-node-0", "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
	h, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatalf("CreateHost: %v", err)
	}
	defer p.DeleteHost(context.Background(), c, spec.Name)
	rec, err := p.store.get(c, spec.Name)
	if err != nil || rec.Machine != l.machines[0].addr || !h.Running {
		t.Fatalf("host %+v on machine %q (%v), want it running on %s", h, rec.Machine, err, l.machines[0].addr)
	}
	spec.Name = "dead-node-1"
	_, err = p.CreateHost(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), "1 unreachable") {
		t.Errorf("CreateHost with only a dead machine left: %v, want no free machine, 1 unreachable", err)
	}
	if _, err := p.store.get(c, spec.Name); err == nil {
		t.Error("a record was left for the host that got no machine")
	}
}

// BenchmarkHost measures a host's life over ssh on a lab machine, with
// the test binary as wharf: create (binary copied, as on every new
// host), power off, start again (binary kept), delete.
func BenchmarkHost(b *testing.B) {
	l := newLab(b, 1)
	self, _ := os.Executable()
	cfg := l.config(b, b.TempDir(), self)
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	c := provider.ClusterRef{Namespace: "bench", Name: "bench", UID: randHex(8)}
	spec := provider.HostSpec{Cluster: c, Name: "bench-node-0", Role: provider.RoleWorker,
		Args: []string{providertest.HelperCommand, "--name", "bench-node-0", "--listen", "$(HOST_IP):7777", "--state-dir", "$(STATE_DIR)"}}
	var create, off, restart, del time.Duration
	step := func(d *time.Duration, fn func() error) {
		t := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		*d += time.Since(t)
	}
	createHost := func() error { _, err := p.CreateHost(ctx, spec); return err }
	for b.Loop() {
		step(&create, createHost)
		step(&off, func() error { return p.PowerOff(ctx, c, spec.Name) })
		step(&restart, createHost)
		step(&del, func() error { return p.DeleteHost(ctx, c, spec.Name) })
	}
	n := float64(b.N)
	fi, _ := os.Stat(self)
	b.ReportMetric(float64(fi.Size())/1e6, "binary-MB")
	b.ReportMetric(float64(create.Milliseconds())/n, "create-ms")
	b.ReportMetric(float64(off.Milliseconds())/n, "poweroff-ms")
	b.ReportMetric(float64(restart.Milliseconds())/n, "restart-ms")
	b.ReportMetric(float64(del.Milliseconds())/n, "delete-ms")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
