// Package fake is an in-memory provider.Provider for tests: hosts are
// records in a map, addresses come from a made-up network, and what runs
// on a host is up to an optional Runtime (a test can start a real control
// plane for a master and a simulated node for a worker). Failures can be
// injected per host name, and PowerOff stops a host as a power cut would.
package fake

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"wharf.dev/wharf/internal/provider"
)

// Provider is the in-memory provider. It is safe for concurrent use.
type Provider struct {
	name      string
	network   netip.Prefix
	stateRoot string
	runtime   Runtime
	*state
}

// state is what outlives a Provider: the hosts (Reopen shares it).
type state struct {
	mu      sync.Mutex
	hosts   map[string]*host  // by hostKey
	fail    map[string]error  // injected CreateHost failures, by host name
	crash   map[string]string // injected crashes right after start: host name → fault
	creates map[string]int    // CreateHost calls, by host name
}

type host struct {
	h    provider.Host
	spec provider.HostSpec
	stop func()
}

var _ provider.Provider = (*Provider)(nil)

// New returns an empty provider.
func New(opts ...Option) *Provider {
	p := &Provider{
		name:    "fake",
		network: netip.MustParsePrefix("192.0.2.0/24"),
		state:   &state{hosts: map[string]*host{}, fail: map[string]error{}, crash: map[string]string{}, creates: map[string]int{}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Reopen returns a new Provider over the same hosts, as a restarted
// service gets over the same state dir: hosts, their processes and
// injected failures carry over.
func (p *Provider) Reopen() *Provider {
	q := *p
	return &q
}

func hostKey(c provider.ClusterRef, name string) string { return c.Key() + "/" + name }

// Name reports the provider's name.
func (p *Provider) Name() string { return p.name }

// ServiceAddress is the network's first address.
func (p *Provider) ServiceAddress() string { return p.network.Addr().Next().String() }

// FailCreate makes every CreateHost of the host called name fail with err
// (nil: stop failing). The failed host is left behind, not running, as a
// half-made VM would be: deleting the cluster must still remove it.
func (p *Provider) FailCreate(name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.fail, name)
		return
	}
	p.fail[name] = err
}

// CrashOnStart makes the process of the host called name die right after
// every start, with fault as the reason ListHosts gives ("": stop). The
// start itself succeeds, as a process that exits a moment later would.
func (p *Provider) CrashOnStart(name, fault string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fault == "" {
		delete(p.crash, name)
		return
	}
	p.crash[name] = fault
}

// CreateHost makes the host, or returns the existing one of that name,
// starting its process again if it is not running.
func (p *Provider) CreateHost(ctx context.Context, spec provider.HostSpec) (provider.Host, error) {
	if err := ctx.Err(); err != nil {
		return provider.Host{}, err
	}
	if spec.Name == "" || spec.Cluster.Name == "" || spec.Cluster.UID == "" {
		return provider.Host{}, fmt.Errorf("create host %q: the host and its cluster need a name and a uid", spec.Name)
	}
	p.mu.Lock()
	p.creates[spec.Name]++
	key := hostKey(spec.Cluster, spec.Name)
	rec, ok := p.hosts[key]
	if !ok {
		addr, err := p.allocate(spec.HostCIDR)
		if err != nil {
			p.mu.Unlock()
			return provider.Host{}, fmt.Errorf("create host %q: %w", spec.Name, err)
		}
		rec = &host{h: provider.Host{
			Name: spec.Name, Role: spec.Role, Cluster: spec.Cluster,
			Address: addr.String(), StateDir: p.stateDir(spec.Cluster, spec.Name),
		}}
		rec.spec = expand(spec, rec.h)
		p.hosts[key] = rec
	}
	if rec.h.Running {
		h := rec.h
		p.mu.Unlock()
		return h, nil
	}
	injected := p.fail[spec.Name]
	h, s := rec.h, rec.spec
	p.mu.Unlock()

	if injected != nil {
		return provider.Host{}, fmt.Errorf("create host %q: %w", spec.Name, injected)
	}
	if err := p.writeFiles(h.StateDir, s.Files); err != nil {
		return provider.Host{}, fmt.Errorf("create host %q: %w", spec.Name, err)
	}
	var stop func()
	if p.runtime != nil {
		var err error
		if stop, err = p.runtime.Start(ctx, h, s); err != nil {
			return provider.Host{}, fmt.Errorf("create host %q: start its process: %w", spec.Name, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.hosts[key]; !ok || cur != rec || cur.h.Running {
		// Deleted or started by someone else meanwhile: ours is surplus.
		if stop != nil {
			stop()
		}
		if ok {
			return cur.h, nil
		}
		return provider.Host{}, fmt.Errorf("create host %q: deleted while starting", spec.Name)
	}
	rec.h.Running, rec.h.Fault, rec.stop = true, "", stop
	started := rec.h
	if fault := p.crash[spec.Name]; fault != "" {
		if stop != nil {
			stop()
		}
		rec.h.Running, rec.h.Fault, rec.stop = false, fault, nil
	}
	return started, nil
}

// DeleteHost stops the host and forgets it; a missing host is not an error.
func (p *Provider) DeleteHost(ctx context.Context, cluster provider.ClusterRef, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	rec, ok := p.hosts[hostKey(cluster, name)]
	delete(p.hosts, hostKey(cluster, name))
	p.mu.Unlock()
	if !ok {
		return nil
	}
	if rec.stop != nil {
		rec.stop()
	}
	if p.stateRoot != "" {
		if err := os.RemoveAll(rec.h.StateDir); err != nil {
			return fmt.Errorf("delete host %q: %w", name, err)
		}
	}
	return nil
}

// ListHosts returns the cluster's hosts, by name.
func (p *Provider) ListHosts(ctx context.Context, cluster provider.ClusterRef) ([]provider.Host, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []provider.Host
	for _, rec := range p.hosts {
		if rec.h.Cluster.Key() == cluster.Key() {
			out = append(out, rec.h)
		}
	}
	slices.SortFunc(out, func(a, b provider.Host) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PowerOff stops the host's process at once; the record stays.
func (p *Provider) PowerOff(ctx context.Context, cluster provider.ClusterRef, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	rec, ok := p.hosts[hostKey(cluster, name)]
	var stop func()
	if ok {
		stop, rec.stop, rec.h.Running, rec.h.Fault = rec.stop, nil, false, ""
	}
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("power off %q: %w", name, provider.ErrNotFound)
	}
	if stop != nil {
		stop()
	}
	return nil
}

// allocate returns the lowest free address of cidr (or the provider's
// network), after the service address. The caller holds p.mu.
func (p *Provider) allocate(cidr string) (netip.Addr, error) {
	network := p.network
	if cidr != "" {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("host CIDR %q: %w", cidr, err)
		}
		network = pfx.Masked()
	}
	used := map[string]bool{p.ServiceAddress(): true}
	for _, rec := range p.hosts {
		used[rec.h.Address] = true
	}
	for a := network.Addr().Next(); network.Contains(a); a = a.Next() {
		if !used[a.String()] && network.Contains(a.Next()) { // the last one is the broadcast
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s", network)
}

func (p *Provider) stateDir(c provider.ClusterRef, name string) string {
	if p.stateRoot == "" {
		return filepath.Join("/fake-hosts", c.Key(), name)
	}
	return filepath.Join(p.stateRoot, c.Key(), name)
}

func (p *Provider) writeFiles(dir string, files map[string][]byte) error {
	if p.stateRoot == "" {
		return nil
	}
	for rel, data := range files {
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("file %q: not below the state dir", rel)
		}
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// expand replaces $(HOST_IP) and $(STATE_DIR) in spec's Args.
func expand(spec provider.HostSpec, h provider.Host) provider.HostSpec {
	r := strings.NewReplacer("$(HOST_IP)", h.Address, "$(STATE_DIR)", h.StateDir)
	spec.Args = slices.Clone(spec.Args)
	for i, a := range spec.Args {
		spec.Args[i] = r.Replace(a)
	}
	return spec
}

// ErrInjected is a ready-made error for FailCreate.
var ErrInjected = errors.New("injected failure")
