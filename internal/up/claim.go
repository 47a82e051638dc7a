package up

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"wharf.dev/wharf/internal/network/netalloc"
	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/wire"
)

// Ranges `wharf up` takes its pods' and services' addresses from when
// none are given: the usual defaults first, else a free /16.
var (
	defaultClusterCIDR = netip.MustParsePrefix(wire.DefaultClusterCIDR)
	clusterPool        = netip.MustParsePrefix("10.224.0.0/11")
	defaultServiceCIDR = netip.MustParsePrefix(wire.DefaultServiceCIDR)
	servicePool        = netip.MustParsePrefix("10.64.0.0/11")
	// Load balancer addresses: a free /28 of this range. They are the
	// machine's own (the agent holds them on lo), never announced.
	lbPool = netip.MustParsePrefix("10.200.0.0/16")
)

const lbBits = 28

// Default ports, taken when free.
const (
	defaultServerPort = 6443
	defaultAgentPort  = 10250
)

// cluster is what a state dir's first `wharf up` chose, kept in
// cluster.json: later runs, `wharf down` and its purge find the same
// node, ranges, bridge and cgroups.
type cluster struct {
	NodeName    string `json:"nodeName"`
	Listen      string `json:"listen"`
	AgentListen string `json:"agentListen"`
	// IngressHTTP and IngressHTTPS are where the node's ingress proxy
	// listens (state dirs of older releases have none until their next up).
	IngressHTTP  string `json:"ingressHTTP,omitempty"`
	IngressHTTPS string `json:"ingressHTTPS,omitempty"`
	ClusterCIDR  string `json:"clusterCIDR"`
	ServiceCIDR  string `json:"serviceCIDR"`
	// LoadBalancerCIDR is where LoadBalancer services' addresses come
	// from (state dirs of older releases have none until their next up).
	LoadBalancerCIDR string `json:"loadBalancerCIDR,omitempty"`
	// Bridge is the pods' bridge; each state dir has its own, since every
	// `wharf up` shares the machine's network namespace.
	Bridge     string `json:"bridge"`
	CgroupRoot string `json:"cgroupRoot"`
}

func clusterFile(stateDir string) string { return filepath.Join(stateDir, "cluster.json") }

func loadCluster(stateDir string) (cluster, error) {
	var c cluster
	data, err := os.ReadFile(clusterFile(stateDir))
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	return c, err
}

// CgroupRoot is the cgroup of the state dir's node (containerd, shims,
// containers), as its first `wharf up` chose it.
func CgroupRoot(stateDir string) (string, error) {
	c, err := loadCluster(stateDir)
	if err != nil {
		return "", fmt.Errorf("wharf up state %s: %w", stateDir, err)
	}
	return c.CgroupRoot, nil
}

// claim returns the state dir's recorded choices or, on the first run,
// makes them: ranges, ports and names no one else on this machine uses,
// under the machine-wide allocation lock, with the ranges held at once by
// unreachable routes (so no other wharf picks them, and nothing of them
// leaves by the default route before the node's own routes exist).
// Options given explicitly win over defaults; a range another holds is
// refused, naming the holder.
func claim(ctx context.Context, o Options) (cluster, error) {
	c, err := loadCluster(o.StateDir)
	if err == nil {
		if o.Listen != "" {
			c.Listen = o.Listen
		}
		if o.AgentListen != "" {
			c.AgentListen = o.AgentListen
		}
		if err := pickIngress(o, &c); err != nil {
			return c, err
		}
		for _, want := range []struct{ asked, has, what string }{{o.ClusterCIDR, c.ClusterCIDR, "cluster CIDR"}, {o.ServiceCIDR, c.ServiceCIDR, "service CIDR"}, {o.LoadBalancerCIDR, c.LoadBalancerCIDR, "load balancer CIDR"}} {
			if want.asked != "" && want.has != "" && want.asked != want.has {
				return c, fmt.Errorf("%s %s asked for, but this cluster has %s: `wharf down --purge` first to change it", want.what, want.asked, want.has)
			}
		}
		if c.LoadBalancerCIDR == "" {
			if err := claimLoadBalancers(ctx, o, &c); err != nil {
				return c, err
			}
		}
		return c, saveCluster(o.StateDir, c)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("%s: %w", clusterFile(o.StateDir), err)
	}
	unlock, err := netalloc.Lock(ctx)
	if err != nil {
		return c, err
	}
	defer unlock()
	snap, err := netalloc.Scan()
	if err != nil {
		return c, err
	}
	sum := sha256.Sum256([]byte(o.StateDir))
	id := hex.EncodeToString(sum[:4])
	c = cluster{NodeName: o.NodeName, Bridge: "wup" + id, CgroupRoot: "/wharf/up-" + id}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, err
		}
		c.NodeName = strings.ToLower(h)
	}
	if _, taken := snap.LinkAlias(c.Bridge); taken {
		return c, fmt.Errorf("interface %s exists: another wharf up with the same state dir hash?", c.Bridge)
	}
	cidr, err := pickRange(snap, o.ClusterCIDR, "cluster CIDR", defaultClusterCIDR, clusterPool)
	if err != nil {
		return c, err
	}
	svc, err := pickRange(snap, o.ServiceCIDR, "service CIDR", defaultServiceCIDR, servicePool)
	if err != nil {
		return c, err
	}
	if cidr.Overlaps(svc) {
		return c, fmt.Errorf("cluster CIDR %s overlaps service CIDR %s", cidr, svc)
	}
	c.ClusterCIDR, c.ServiceCIDR = cidr.String(), svc.String()
	if c.Listen, err = pickListen(o.Listen, "127.0.0.1", defaultServerPort); err != nil {
		return c, err
	}
	if c.AgentListen, err = pickListen(o.AgentListen, "0.0.0.0", defaultAgentPort); err != nil {
		return c, err
	}
	if err := pickIngress(o, &c); err != nil {
		return c, err
	}
	for _, p := range []netip.Prefix{cidr, svc} {
		if err := routes.Guard(nil, p); err != nil {
			return c, err
		}
	}
	if err := claimLoadBalancersLocked(snap, o, &c); err != nil {
		return c, err
	}
	return c, saveCluster(o.StateDir, c)
}

// claimLoadBalancers picks the cluster's load balancer range, under the
// machine-wide allocation lock.
func claimLoadBalancers(ctx context.Context, o Options, c *cluster) error {
	unlock, err := netalloc.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	snap, err := netalloc.Scan()
	if err != nil {
		return err
	}
	return claimLoadBalancersLocked(snap, o, c)
}

// claimLoadBalancersLocked picks the range (the one asked, or a free /28
// of lbPool) and holds it with an unreachable route, as the other
// ranges: an address of it that no service holds goes nowhere.
func claimLoadBalancersLocked(snap *netalloc.Snapshot, o Options, c *cluster) error {
	var p netip.Prefix
	var err error
	if o.LoadBalancerCIDR != "" {
		p, err = pickRange(snap, o.LoadBalancerCIDR, "load balancer CIDR", netip.Prefix{}, lbPool)
	} else if p, err = snap.Free(lbPool, lbBits, netip.Prefix{}); err != nil {
		err = fmt.Errorf("load balancer CIDR: %w (give one)", err)
	}
	if err != nil {
		return err
	}
	for _, other := range []string{c.ClusterCIDR, c.ServiceCIDR} {
		if q, err := netip.ParsePrefix(other); err == nil && q.Overlaps(p) {
			return fmt.Errorf("load balancer CIDR %s overlaps %s", p, q)
		}
	}
	if err := routes.Guard(nil, p); err != nil {
		return err
	}
	c.LoadBalancerCIDR = p.String()
	return nil
}

// pickRange is asked if given (refused when another holds part of it),
// else def if free, else the first free /16 of pool.
func pickRange(snap *netalloc.Snapshot, asked, what string, def, pool netip.Prefix) (netip.Prefix, error) {
	if asked != "" {
		p, err := netip.ParsePrefix(asked)
		if err != nil || !p.Addr().Is4() {
			return p, fmt.Errorf("%s %q: want an IPv4 CIDR", what, asked)
		}
		if held := snap.Overlapping(p.Masked(), nil); len(held) > 0 {
			return p, fmt.Errorf("%s %s is in use on this machine: %s", what, p.Masked(), netalloc.Describe(held))
		}
		return p.Masked(), nil
	}
	if len(snap.Overlapping(def, nil)) == 0 {
		return def, nil
	}
	p, err := snap.Free(pool, 16, netip.Prefix{})
	if err != nil {
		return p, fmt.Errorf("%s: %w (give one)", what, err)
	}
	return p, nil
}

// pickIngress sets the ingress proxy's addresses: those asked, else the
// recorded ones, else 0.0.0.0:80 and :443 when free, else free ports.
func pickIngress(o Options, c *cluster) error {
	for _, l := range []struct {
		asked string
		has   *string
		port  int
	}{{o.IngressHTTP, &c.IngressHTTP, 80}, {o.IngressHTTPS, &c.IngressHTTPS, 443}} {
		if l.asked == "" && *l.has != "" {
			continue
		}
		v, err := pickListen(l.asked, "0.0.0.0", l.port)
		if err != nil {
			return err
		}
		*l.has = v
	}
	return nil
}

// pickListen is asked if given, else host:port if free, else a free port
// of host.
func pickListen(asked, host string, port int) (string, error) {
	if asked != "" {
		return asked, nil
	}
	p, err := netalloc.FreePort(host, port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

func saveCluster(stateDir string, c cluster) error {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(clusterFile(stateDir), append(data, '\n'), 0o644)
}

// release lets go of the ranges claim held (`wharf down --purge`).
func release(c cluster) error {
	var errs []error
	for _, s := range []string{c.ClusterCIDR, c.ServiceCIDR, c.LoadBalancerCIDR} {
		if p, err := netip.ParsePrefix(s); err == nil {
			errs = append(errs, routes.Unguard(nil, p))
		}
	}
	return errors.Join(errs...)
}
