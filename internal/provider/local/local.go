// Package local is the provider.Provider of hosts on the service's own
// machine: a host is a network namespace joined by a veth pair to one
// bridge, a cgroup v1 subtree with the flavor's limits, and a wharf
// process started in both. It is what a VM is to Magnum, made in tens of
// milliseconds. Hosts outlive the service: each has a record (host.json)
// in its state dir, and a new Provider over the same state dir adopts
// them. docs/service.md "The local provider" fixes names and paths.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/knftables"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

// DefaultNetwork is the provider network of Config, and the first one
// ClaimNetwork tries.
const DefaultNetwork = wire.DefaultProviderNetwork

// Config says where a local provider keeps hosts and how it wires them.
type Config struct {
	// StateDir holds a directory per host, <StateDir>/<cluster key>/<host>
	// (the host's $(STATE_DIR) and its host.json); the service passes
	// S/hosts. Required.
	StateDir string
	// Network is the provider network, an IPv4 CIDR (default
	// DefaultNetwork; ClaimNetwork finds a free one); the bridge has its
	// first address, the service address, and hosts get the others.
	Network string
	// Bridge is the bridge's name in the root namespace (default
	// BridgeFor(Owner)).
	Bridge string
	// Owner names who the network is for, in the bridge's alias and in
	// messages about it (e.g. "wharf service /var/lib/wharf-service");
	// default "wharf local provider <StateDir>".
	Owner string
	// ServicePort is the one TCP port hosts may reach on the service
	// address (the service's API and registry); 0: none. Hosts reach
	// nothing else of the machine, and no host of another cluster.
	ServicePort int
	// Binary is the wharf executable hosts run (default os.Executable()).
	Binary string
	Logger *slog.Logger
}

// Provider makes hosts on this machine; it is safe for concurrent use.
type Provider struct {
	cfg        Config
	network    netip.Prefix
	bridgeAddr netip.Addr
	nsenter    string
	log        *slog.Logger
	// forwardOK: the bridge's FORWARD rule was checked; networkOK: the
	// whole network was (EnsureNetwork), and only the bridge's presence
	// is checked before a host is made.
	forwardOK, networkOK atomic.Bool
	nftMu                sync.Mutex
	nft                  map[knftables.Family]knftables.Interface
	// exits maps the pids of host processes this provider started and
	// saw end to how they ended ("signal: killed", "exit status 1").
	exits sync.Map
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider over cfg.StateDir; it adopts the hosts recorded
// there. It changes nothing on the machine: CreateHost (or EnsureNetwork)
// creates the bridge.
func New(cfg Config) (*Provider, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("local provider: no state dir")
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local provider: state dir: %w", err)
	}
	cfg.StateDir = abs
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	network, err := netip.ParsePrefix(cfg.Network)
	if err != nil || !network.Addr().Is4() || network.Bits() > 29 {
		return nil, fmt.Errorf("local provider: network %q: want an IPv4 CIDR of at least /29", cfg.Network)
	}
	network = network.Masked()
	if cfg.Owner == "" {
		cfg.Owner = "wharf local provider " + cfg.StateDir
	}
	if cfg.Bridge == "" {
		cfg.Bridge = BridgeFor(cfg.Owner)
	}
	if len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("local provider: bridge name %q longer than 15 bytes", cfg.Bridge)
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("local provider: wharf binary: %w", err)
		}
	}
	if cfg.Binary, err = exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("local provider: wharf binary: %w", err)
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Provider{
		cfg: cfg, network: network, bridgeAddr: network.Addr().Next(), nsenter: nsenter,
		log: cfg.Logger.With("provider", "local"), nft: map[knftables.Family]knftables.Interface{},
	}, nil
}

// Name is "local".
func (p *Provider) Name() string { return "local" }

// ServiceAddress is the bridge's address, the network's first.
func (p *Provider) ServiceAddress() string { return p.bridgeAddr.String() }

// LoadBalancerPool is the top quarter of the provider network (a /26 of a
// /24): hosts never get addresses there.
func (p *Provider) LoadBalancerPool() string { return lbPool(p.network).String() }

func lbPool(network netip.Prefix) netip.Prefix {
	bits := network.Bits() + 2
	return netip.PrefixFrom(lastAddr(network), bits).Masked()
}

// CreateHost makes the host and starts its process, or returns the
// running host. Every step checks before it acts, so calling it again
// after a failure (or a crash of the service) completes the host.
func (p *Provider) CreateHost(ctx context.Context, spec provider.HostSpec) (provider.Host, error) {
	if err := checkName("cluster name", spec.Cluster.Name); err != nil {
		return provider.Host{}, err
	}
	if err := checkName("host name", spec.Name); err != nil {
		return provider.Host{}, err
	}
	lim, err := cgroups.ParseLimits(spec.CPU, spec.Memory)
	if err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	n := p.namesFor(spec.Cluster, spec.Name)
	// Refuse a bad spec before anything is made (an address taken).
	if err := checkFiles(spec.Files); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if err := checkSocketPaths(expandArgs(spec.Args, "255.255.255.255", n.dir)); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	defer lockHost(n.dir)()
	start := time.Now()

	r, err := readRecord(n.dir)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		r = &record{Name: spec.Name, Role: spec.Role, Cluster: spec.Cluster,
			NetNS: n.netns, Veth: n.veth, CgroupRoot: n.cgroupRoot, Created: time.Now().UTC()}
		if err := p.reserve(r, spec.HostCIDR); err != nil {
			return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
		}
	case err != nil:
		return provider.Host{}, err
	case r.Cluster.UID != spec.Cluster.UID:
		return provider.Host{}, fmt.Errorf("host %q: %s belongs to cluster %s/%s (uid %s)",
			spec.Name, n.dir, r.Cluster.Namespace, r.Cluster.Name, r.Cluster.UID)
	case r.alive():
		return p.hostOf(r, true), nil
	}
	args := expandArgs(spec.Args, r.Address, n.dir)
	addr, err := netip.ParseAddr(r.Address)
	if err != nil {
		return provider.Host{}, fmt.Errorf("host %q: recorded address: %w", spec.Name, err)
	}
	if err := p.ensureNetworkOnce(ctx); err != nil {
		return provider.Host{}, err
	}
	// The host's veth joins its cluster's in the bridge table.
	if err := p.syncPorts(ctx); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if err := p.setupHostNetwork(n, addr, true); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	// The limits bound the whole host; its wharf process runs in root/wharf.
	if err := cgroups.Set(n.cgroupRoot, lim); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	procs, err := cgroups.Create(n.cgroupRoot + "/wharf")
	if err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if err := writeFiles(n.dir, spec.Files); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	// A process of an earlier start whose pid never made it to the record.
	if err := cgroups.Kill(n.cgroupRoot + "/wharf"); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	r.Role = spec.Role
	files := r.Spec.Files // a resumed host's files are on disk already
	r.Spec = recordedSpec{CPU: spec.CPU, Memory: spec.Memory, HostCIDR: spec.HostCIDR, Args: spec.Args, Files: files}
	if spec.Files != nil {
		r.Spec.Files = nil
		for f := range spec.Files {
			r.Spec.Files = append(r.Spec.Files, f)
		}
		sort.Strings(r.Spec.Files)
	}
	if r.PID, r.StartTime, err = p.startProcess(n, procs, args); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if err := writeRecord(n.dir, r); err != nil {
		return provider.Host{}, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	p.log.Info("host started", "cluster", spec.Cluster.Key(), "host", spec.Name,
		"address", r.Address, "pid", r.PID, "took", time.Since(start).Round(time.Microsecond))
	return p.hostOf(r, true), nil
}

// ListHosts returns the cluster's hosts, sorted by name.
func (p *Provider) ListHosts(ctx context.Context, cluster provider.ClusterRef) ([]provider.Host, error) {
	files, err := filepath.Glob(filepath.Join(p.cfg.StateDir, "*", recordFile))
	if err != nil {
		return nil, err
	}
	hosts := []provider.Host{}
	for _, f := range files {
		r, err := readRecord(filepath.Dir(f))
		if errors.Is(err, provider.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if r.Cluster.UID == cluster.UID && r.Cluster.Name == cluster.Name {
			hosts = append(hosts, p.hostOf(r, r.alive()))
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	return hosts, nil
}

func (p *Provider) hostOf(r *record, running bool) provider.Host {
	h := provider.Host{
		Name: r.Name, Role: r.Role, Cluster: r.Cluster, Address: r.Address,
		StateDir: p.namesFor(r.Cluster, r.Name).dir, Running: running,
	}
	if !running && r.PID > 0 { // started, not powered off: it died
		h.Fault = p.fault(r)
	}
	return h
}

// AllHosts returns every host of every cluster on this provider, for
// tools that clean up or inspect the whole machine.
func (p *Provider) AllHosts(ctx context.Context) ([]provider.Host, error) {
	recs, err := p.allRecords()
	if err != nil {
		return nil, err
	}
	hosts := make([]provider.Host, 0, len(recs))
	for _, r := range recs {
		hosts = append(hosts, p.hostOf(r, r.alive()))
	}
	return hosts, nil
}
