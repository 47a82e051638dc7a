package fake

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"wharf.dev/wharf/internal/provider"
)

var demo = provider.ClusterRef{Namespace: "p1", Name: "demo", UID: "0123456789abcdef"}

func spec(name, role string) provider.HostSpec {
	return provider.HostSpec{
		Cluster: demo, Name: name, Role: role,
		Files: map[string][]byte{"server/tokens.json": []byte(`{}`)},
		Args:  []string{"server", "--listen", "$(HOST_IP):6443", "--data-dir", "$(STATE_DIR)/server"},
	}
}

// countingRuntime counts running processes.
type countingRuntime struct{ running atomic.Int32 }

func (r *countingRuntime) Start(ctx context.Context, h provider.Host, s provider.HostSpec) (func(), error) {
	r.running.Add(1)
	return func() { r.running.Add(-1) }, nil
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rt := &countingRuntime{}
	p := New(WithNetwork(netip.MustParsePrefix("10.9.0.0/24")), WithStateRoot(root), WithRuntime(rt))

	m, err := p.CreateHost(ctx, spec("demo-master-0", provider.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	want := provider.Host{Name: "demo-master-0", Role: provider.RoleMaster, Cluster: demo, Address: "10.9.0.2",
		StateDir: filepath.Join(root, demo.Key(), "demo-master-0"), Running: true}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Fatalf("host (-want +got):\n%s", diff)
	}
	if p.ServiceAddress() != "10.9.0.1" {
		t.Errorf("service address %s, want 10.9.0.1", p.ServiceAddress())
	}
	if data, err := os.ReadFile(filepath.Join(m.StateDir, "server/tokens.json")); err != nil || string(data) != "{}" {
		t.Errorf("file on the host: %q, %v", data, err)
	}
	s, _ := p.Spec(demo, "demo-master-0")
	if diff := cmp.Diff([]string{"server", "--listen", "10.9.0.2:6443", "--data-dir", m.StateDir + "/server"}, s.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}

	// Idempotent: the same host, one process.
	again, err := p.CreateHost(ctx, spec("demo-master-0", provider.RoleMaster))
	if err != nil || again != m || rt.running.Load() != 1 {
		t.Fatalf("second create: %+v, %v, %d running", again, err, rt.running.Load())
	}
	w, _ := p.CreateHost(ctx, spec("demo-node-0", provider.RoleWorker))
	if w.Address != "10.9.0.3" {
		t.Errorf("worker address %s, want 10.9.0.3", w.Address)
	}

	// PowerOff keeps the record; CreateHost starts it again.
	if err := p.PowerOff(ctx, demo, "demo-node-0"); err != nil {
		t.Fatal(err)
	}
	hosts, _ := p.ListHosts(ctx, demo)
	if len(hosts) != 2 || hosts[1].Running || rt.running.Load() != 1 {
		t.Fatalf("after power off: %+v, %d running", hosts, rt.running.Load())
	}
	if w, _ = p.CreateHost(ctx, spec("demo-node-0", provider.RoleWorker)); !w.Running || rt.running.Load() != 2 {
		t.Fatalf("after power on: %+v, %d running", w, rt.running.Load())
	}

	// DeleteHost removes everything; twice is fine; the address is reused.
	for range 2 {
		if err := p.DeleteHost(ctx, demo, "demo-master-0"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(m.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir after delete: %v", err)
	}
	if n, _ := p.CreateHost(ctx, spec("demo-node-1", provider.RoleWorker)); n.Address != "10.9.0.2" {
		t.Errorf("reused address %s, want 10.9.0.2", n.Address)
	}
	if err := p.PowerOff(ctx, demo, "nope"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("power off of a missing host: %v, want ErrNotFound", err)
	}
	other := provider.ClusterRef{Namespace: "p1", Name: "demo", UID: "ffffffffffff"}
	if hs, _ := p.ListHosts(ctx, other); len(hs) != 0 {
		t.Errorf("another cluster of the same name sees %d hosts", len(hs))
	}
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	startErr := errors.New("containerd did not start")
	rt := RuntimeFunc(func(ctx context.Context, h provider.Host, s provider.HostSpec) (func(), error) {
		if h.Name == "demo-node-2" {
			return nil, startErr
		}
		return nil, nil
	})
	tests := []struct {
		name    string
		host    string
		inject  error
		wantErr error
	}{
		{"injected", "demo-node-1", ErrInjected, ErrInjected},
		{"runtime", "demo-node-2", nil, startErr},
		{"fine", "demo-node-3", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(WithRuntime(rt))
			p.FailCreate(tt.host, tt.inject)
			_, err := p.CreateHost(ctx, spec(tt.host, provider.RoleWorker))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("create: %v, want %v", err, tt.wantErr)
			}
			hosts, _ := p.ListHosts(ctx, demo)
			if len(hosts) != 1 || hosts[0].Running != (tt.wantErr == nil) {
				t.Fatalf("hosts after create: %+v", hosts)
			}
			if err := p.DeleteHost(ctx, demo, tt.host); err != nil || len(p.All()) != 0 {
				t.Fatalf("delete: %v, left %+v", err, p.All())
			}
		})
	}

	p := New()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.CreateHost(cctx, spec("demo-node-0", provider.RoleWorker)); !errors.Is(err, context.Canceled) {
		t.Errorf("create with a done context: %v", err)
	}
}
