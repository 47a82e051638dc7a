package local

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"
)

// Each cluster's hosts are cut off from every other cluster's, as Magnum
// gives each cluster a private network, and from the machine but for the
// service's one port. Two nftables tables of the provider's own, named
// after its bridge, do it:
//
//   - bridge family: a frame crosses the bridge from one host's veth to
//     another's only if both hosts belong to one cluster (a set of veth
//     pairs, rewritten whenever a host comes or goes); broadcasts are
//     filtered per port, so ARP does not cross clusters either.
//   - inet family: what arrives from the bridge for the machine itself is
//     dropped unless it is the service's address and port (registry and
//     API) or a reply; nothing is routed between the bridge and any other
//     interface, another service's bridge or the default one included.
//
// The machine reaching a host (the service's health checks, kubectl from
// the shell) is untouched: that is the output path, and its replies are
// established connections.
//
// Making a host rewrites the bridge table only, in one transaction; the
// inet table changes with the network only. A transaction costs ~20 ms
// here (the kernel waits for an RCU grace period to commit it), so hosts
// made at once share transactions (coalesced). Deleting a host changes
// nothing: the names of a gone host's veth stay in the sets until the
// next host is made (a veth name is a hash of cluster and host, so it can
// only ever come back for the same host), and the tables go with the
// network.

// syncers coalesce the rewrites of one bridge table within the process.
var syncers sync.Map

// coalescer runs fn so that every caller returns after a run that began
// after it called: callers that arrive during a run share the next one.
type coalescer struct {
	mu             sync.Mutex
	cond           *sync.Cond
	running        bool
	asked, covered int // requests made; requests the last finished run covered
	err            error
}

func (c *coalescer) do(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	want := c.asked
	for c.covered < want {
		if c.running {
			c.cond.Wait()
			continue
		}
		c.running = true
		upTo := c.asked
		c.mu.Unlock()
		err := fn()
		c.mu.Lock()
		c.running, c.covered, c.err = false, upTo, err
		c.cond.Broadcast()
	}
	return c.err
}

// tableName is the provider's tables' name in both families.
func (p *Provider) tableName() string { return "wharf-" + p.cfg.Bridge }

// nftables returns the provider's handle of its table in a family,
// made once (knftables.New runs `nft --version`).
func (p *Provider) nftables(family knftables.Family) (knftables.Interface, error) {
	p.nftMu.Lock()
	defer p.nftMu.Unlock()
	if nft, ok := p.nft[family]; ok {
		return nft, nil
	}
	nft, err := knftables.New(family, p.tableName())
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	p.nft[family] = nft
	return nft, nil
}

// writeIsolation writes both tables: the service rules and the ports.
func (p *Provider) writeIsolation(ctx context.Context) error {
	inet, err := p.nftables(knftables.InetFamily)
	if err != nil {
		return err
	}
	tx := inet.NewTransaction()
	comment := "wharf: hosts reach the service's port only, nothing is routed off the bridge (" + p.cfg.Owner + ")"
	tx.Add(&knftables.Table{Comment: &comment})
	bridge := `"` + p.cfg.Bridge + `"`
	for _, hook := range []knftables.BaseChainHook{knftables.InputHook, knftables.ForwardHook} {
		c := &knftables.Chain{Name: string(hook), Type: knftables.PtrTo(knftables.FilterType),
			Hook: knftables.PtrTo(hook), Priority: knftables.PtrTo(knftables.FilterPriority)}
		tx.Add(c)
		tx.Flush(c)
	}
	tx.Add(&knftables.Rule{Chain: "input", Rule: knftables.Concat("iifname", bridge, "ct state established,related accept")})
	if p.cfg.ServicePort > 0 {
		tx.Add(&knftables.Rule{Chain: "input", Rule: knftables.Concat("iifname", bridge, "ip daddr", p.bridgeAddr, "tcp dport", p.cfg.ServicePort, "accept")})
	}
	tx.Add(&knftables.Rule{Chain: "input", Rule: knftables.Concat("iifname", bridge, "reject with icmpx admin-prohibited")})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: knftables.Concat("iifname", bridge, "oifname !=", bridge, "reject with icmpx admin-prohibited")})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: knftables.Concat("oifname", bridge, "iifname !=", bridge, "drop")})
	if err := inet.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables inet %s: %w", p.tableName(), err)
	}
	return p.syncPorts(ctx)
}

// syncPorts rewrites the bridge table from the host records, in one
// transaction (the rules stay whole while the sets change), coalesced
// with the syncs of other callers. Without the bridge (a purge, a
// provider over a network it never made) there is nothing to isolate: no
// table is made.
func (p *Provider) syncPorts(ctx context.Context) error {
	if _, err := netlink.LinkByName(p.cfg.Bridge); err != nil {
		return nil
	}
	c := &coalescer{}
	c.cond = sync.NewCond(&c.mu)
	v, _ := syncers.LoadOrStore(p.tableName(), c)
	return v.(*coalescer).do(func() error { return p.writePorts(ctx) })
}

func (p *Provider) writePorts(ctx context.Context) error {
	recs, err := p.allRecords()
	if err != nil {
		return err
	}
	byCluster := map[string][]string{}
	var ports []string
	for _, r := range recs {
		veth := r.Veth
		if veth == "" {
			veth = p.namesFor(r.Cluster, r.Name).veth
		}
		byCluster[r.Cluster.UID] = append(byCluster[r.Cluster.UID], veth)
		ports = append(ports, veth)
	}
	sort.Strings(ports)

	br, err := p.nftables(knftables.BridgeFamily)
	if err != nil {
		return err
	}
	tx := br.NewTransaction()
	comment := "wharf: hosts of one cluster reach only each other (" + p.cfg.Owner + ")"
	tx.Add(&knftables.Table{Comment: &comment})
	tx.Add(&knftables.Set{Name: "ports", Type: "ifname"})
	tx.Add(&knftables.Set{Name: "peers", Type: "ifname . ifname"})
	tx.Flush(&knftables.Set{Name: "ports"})
	tx.Flush(&knftables.Set{Name: "peers"})
	forward := &knftables.Chain{Name: "forward", Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.ForwardHook), Priority: knftables.PtrTo(knftables.FilterPriority)}
	tx.Add(forward)
	tx.Flush(forward)
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "iifname . oifname @peers accept"})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "iifname @ports drop"})
	for _, port := range ports {
		tx.Add(&knftables.Element{Set: "ports", Key: []string{port}})
	}
	for _, members := range byCluster {
		for _, a := range members {
			for _, b := range members {
				if a != b {
					tx.Add(&knftables.Element{Set: "peers", Key: []string{a, b}})
				}
			}
		}
	}
	if err := br.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables bridge %s: %w", p.tableName(), err)
	}
	return nil
}

// removeIsolation deletes both tables; missing ones are no error.
func (p *Provider) removeIsolation(ctx context.Context) error {
	for _, family := range []knftables.Family{knftables.BridgeFamily, knftables.InetFamily} {
		nft, err := p.nftables(family)
		if err != nil {
			return err
		}
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables %s %s: %w", family, p.tableName(), err)
		}
	}
	return nil
}
