// Package proxy is a node's Service proxy: it programs nftables so that
// connections to a Service's IPv4 cluster IP reach one of its ready
// endpoints, as kube-proxy's nftables mode does (KEP-3866). The node
// agent feeds it Services and EndpointSlices and calls Sync.
//
// Everything lives in one table of the ip family, Config.Table:
//
//   - nat-prerouting (priority dstnat) and nat-output (-100) jump to
//     services, which looks up "ip daddr . meta l4proto . th dport" in the
//     verdict map service-ips. A service port with N endpoints and no
//     session affinity goes to the chain pick-<N>, shared by all the
//     service ports of N endpoints: it marks the packet for masquerade
//     when its source is outside Config.ClusterCIDR (the node, another
//     host), then "meta l4proto tcp dnat to ip daddr . tcp dport . numgen
//     random mod N map @endpoints-tcp" (a rule each for udp and sctp):
//     the maps endpoints-tcp, -udp and -sctp hold "cluster IP . port . i :
//     endpoint IP . port" for the endpoints i = 0..N-1 of each service
//     port, sorted, so each endpoint gets 1/N of the connections. An
//     endpoint change is then element updates only, and a change of N one
//     service-ips element; no chain is written but the first pick-<N>.
//     (One map for all protocols, keyed "... . meta l4proto . th dport .
//     numgen ...", is refused by nft 1.0.6 in a rule added once the map
//     exists: "conflicting protocols specified: tcp vs. th".)
//   - A service port with ClientIP session affinity keeps a chain of its
//     own, service-<hash>-<ns>/<name>/<proto>/<port name>: masquerade
//     marking as in pick-<N>, then, with a timeout set affinity-<hash>-
//     <...>__<ip>/<port> of recent clients per endpoint, rules checking
//     them first, then rule i of N "numgen random mod N-i == 0 ... update
//     @<set> { ip saddr } dnat to ip:port" (the last one unconditional).
//     A map-only form seems within nft 1.0.6's reach (a dynamic map keyed
//     "ip saddr . ip daddr . tcp dport" updated at postrouting with "ct
//     original ip daddr . ct original proto-dst : ip daddr . tcp dport",
//     consulted by a dnat before pick-<N>) but not done: the entries of
//     an endpoint that goes away would have to be found and deleted.
//   - nat-postrouting (srcnat) jumps to masquerading, which masquerades
//     packets marked 0x4000 and hairpin ones (a pod reaching itself
//     through a Service: "ip saddr . ip daddr" is in the set hairpin, which
//     holds "ip . ip" for every endpoint that may be a pod of this node:
//     its slice names this node or none), clearing the mark.
//   - filter-input, filter-forward and filter-output (priority filter,
//     after DNAT) send new connections still addressed to a cluster IP to
//     reject-chain, which answers a TCP reset or an ICMP port unreachable
//     at once: through the map no-endpoint-services those to a service
//     port without usable endpoints, through the set cluster-ips those to
//     any other port of a cluster IP. reject is not allowed at prerouting,
//     hence the filter hooks; DNAT has happened by then, so an address
//     still equal to a cluster IP means no endpoint took it.
//   - Node ports (NodePort and LoadBalancer services) answer on
//     Config.NodeIPs: services looks up "meta l4proto . th dport" of
//     packets to them in service-nodeports, going to nodeport-pick-<N>
//     (externalTrafficPolicy Cluster: every endpoint, always masqueraded,
//     so that replies come back through this node) or nodeport-local-<N>
//     (Local: this node's endpoints only, the client's address kept),
//     which DNAT through nodeport-endpoints-tcp, -udp and -sctp, keyed
//     "port . numgen random mod N". endpoints-check refuses, through
//     no-endpoint-nodeports, a node port without endpoints, and drops one
//     whose endpoints are all on other nodes (Local), as kube-proxy does.
//
// kube-proxy has a chain per endpoint as well, and picks one with an
// anonymous "numgen random mod N vmap { ... }". Both measured badly here
// (nft 1.0.6, kernel 6.18, services of 10 endpoints): the kernel scans
// every set of the table to name each anonymous set, so a full sync grows
// quadratically (17 s for 4,000 services, over 2 minutes for 10,000); and
// each nft run dumps every chain of the table while each commit re-checks
// all that the base chains reach, so with 110,000 chains a one-service
// change cost 0.65 s. With a chain per service port it was 0.12 s (nat
// rules make the kernel validate the table, walking every element of
// service-ips into every chain), and a full sync of 10,000 services 8.8
// s (6.6 s over a previous table). With the pick-<N> chains
// (BenchmarkSync, 10 endpoints each): one change 16 ms at 1,000 services
// and 26 ms at 10,000; a full sync 0.39 s and 4.3 s (4.6 s over a
// previous table), of which nft takes 3.5 s to parse 220,000 commands,
// 100,000 of them hairpin elements; with hairpin elements for this
// node's endpoints only (a tenth, as on 10 nodes), 130,000 commands,
// all through nft: 0.29 s and 3.0 s (3.25 s over a previous table), one
// change 15 and 22 ms. An interval map instead, "numgen random mod 1000"
// in buckets of ranges (0-499, 500-999), works too but its kernel set
// (pipapo) took 7 to 34 s to load 100,000 elements.
//
// Sync writes, in one transaction, what changed since the last one: the
// chains, sets and map elements of the services whose Service or slices
// changed, and the pick-<N> chains first needed; a chain whose rules did
// not change is not touched, and chains and sets no longer used are
// deleted after the rules and elements that used them are gone.
//
// The first Sync, and the one after a failed Sync, is a full sync. The
// shared sets and maps above come in two generations, service-ips-a and
// service-ips-b and so on: a full sync adds the table, every chain and the
// empty sets and maps of the generation the rules do not use, fills them
// through netlink (github.com/google/nftables: nft parses each element,
// 1.5 to 3 s for 130,000 of them; the kernel takes them from netlink in
// 0.3 s), then rewrites every rule to use them and deletes the previous
// generation and whatever else is there (a previous process's services)
// in one transaction. The table is never deleted, traffic goes by the old
// generation until that last commit, and the affinity sets are kept:
// clients keep their endpoint. 10,000 services: 0.7 to 0.9 s, of which
// the kernel's netlink commit is 0.3 s.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// Config says how a Proxy runs.
type Config struct {
	// Table is the nftables table (family ip), one per node agent, e.g.
	// "wharf-svc-abc123"; required.
	Table string
	// NodeName selects the endpoints of internalTrafficPolicy Local
	// services (EndpointSlice endpoint.NodeName).
	NodeName string
	// ClusterCIDR is the pods' range: Service traffic from outside it is
	// masqueraded, so that replies come back through this node. Zero: none
	// is (but hairpin traffic).
	ClusterCIDR netip.Prefix
	// NodeIPs are the node's addresses that answer on node ports
	// (NodePort and LoadBalancer services), IPv4 ones; none: node ports
	// are not served.
	NodeIPs []netip.Addr
	// ServeHealthChecks serves the healthCheckNodePort of each LoadBalancer
	// service with externalTrafficPolicy Local (see healthServer), on every
	// address of the namespace Sync runs in.
	ServeHealthChecks bool
	// NFT is the handle of Table in family ip. Nil: one made by
	// knftables.New with the UseNetlink option (listing a large table
	// through nft's JSON output takes seconds), run in the calling
	// thread's network namespace, and a full sync's elements written
	// through netlink. Unit tests pass knftables.NewFake: everything goes
	// through it.
	NFT    knftables.Interface
	Logger *slog.Logger
}

// Proxy keeps a node's Service rules in nftables. Its methods may be
// called from several goroutines.
type Proxy struct {
	cfg     Config
	nft     knftables.Interface
	log     *slog.Logger
	cidr    string // ClusterCIDR for rules, "" without one
	nodeIPs string // NodeIPs for rules: an address or an anonymous set; "" without

	mu       sync.Mutex // guards what the informers said, below
	services map[types.NamespacedName]*service
	slices   map[types.NamespacedName]*slice            // by slice
	bySvc    map[types.NamespacedName]map[string]*slice // by service, then slice name
	dirty    map[types.NamespacedName]bool
	needFull bool
	warned   map[string]map[string]bool // by object

	syncMu  sync.Mutex // one Sync at a time; guards what the kernel has, below
	written map[types.NamespacedName]*svcRules
	picks   map[pick]bool // the pick chains
	stores  [numStores]*elemStore
	bulk    bulkWriter
	health  *healthServer // nil: not served
}

// New returns a Proxy; nothing is written before the first Sync.
func New(cfg Config) (*Proxy, error) {
	if cfg.Table == "" {
		return nil, errors.New("service proxy: no nftables table name")
	}
	p := &Proxy{
		cfg:      cfg,
		nft:      cfg.NFT,
		log:      cfg.Logger,
		services: map[types.NamespacedName]*service{},
		slices:   map[types.NamespacedName]*slice{},
		bySvc:    map[types.NamespacedName]map[string]*slice{},
		dirty:    map[types.NamespacedName]bool{},
		needFull: true,
		warned:   map[string]map[string]bool{},
		written:  map[types.NamespacedName]*svcRules{},
		picks:    map[pick]bool{},
	}
	if cidr := cfg.ClusterCIDR; cidr.IsValid() {
		if !cidr.Addr().Is4() {
			return nil, fmt.Errorf("service proxy: cluster CIDR %s is not IPv4", cidr)
		}
		p.cidr = cidr.Masked().String()
	}
	var ips []string
	for _, a := range cfg.NodeIPs {
		if !a.Is4() {
			return nil, fmt.Errorf("service proxy: node address %s is not IPv4", a)
		}
		ips = append(ips, a.String())
	}
	switch slices.Sort(ips); len(ips) {
	case 0:
	case 1:
		p.nodeIPs = ips[0]
	default:
		p.nodeIPs = "{ " + strings.Join(ips, ", ") + " }"
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if cfg.ServeHealthChecks {
		p.health = newHealthServer(p.log)
	}
	p.bulk = txBulk{p.nft}
	if p.nft == nil {
		nft, err := knftables.New(knftables.IPv4Family, cfg.Table, knftables.UseNetlink)
		if err != nil {
			return nil, fmt.Errorf("service proxy: nftables table %s: %w", cfg.Table, err)
		}
		p.nft, p.bulk = nft, netlinkBulk{cfg.Table}
	}
	for i := range p.stores {
		p.stores[i] = newElemStore(storeDefs[i])
	}
	return p, nil
}

// Close stops serving health check node ports.
func (p *Proxy) Close(ctx context.Context) error {
	if p.health == nil {
		return nil
	}
	return p.health.close(ctx)
}

// Remove deletes the proxy's table, e.g. when the node agent is
// uninstalled; a missing table is no error.
func Remove(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("delete service proxy table: %w", err)
	}
	return nil
}

// UpdateService adds or changes a Service.
func (p *Proxy) UpdateService(svc *corev1.Service) {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	p.mu.Lock()
	defer p.mu.Unlock()
	parsed := p.parseService(svc)
	if old, ok := p.services[key]; ok && equalService(old, parsed) {
		return
	}
	p.services[key] = parsed
	p.dirty[key] = true
}

// DeleteService forgets a Service; its slices stay until deleted.
func (p *Proxy) DeleteService(namespace, name string) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.services[key]; ok {
		delete(p.services, key)
		p.dirty[key] = true
	}
	delete(p.warned, "service "+key.String())
}

// UpdateEndpointSlice adds or changes an EndpointSlice; it belongs to the
// Service its kubernetes.io/service-name label names.
func (p *Proxy) UpdateEndpointSlice(es *discoveryv1.EndpointSlice) {
	key := sliceKey(es)
	p.mu.Lock()
	defer p.mu.Unlock()
	parsed := p.parseSlice(es)
	old := p.slices[key]
	if old == nil && parsed == nil || old != nil && parsed != nil && equalSlice(old, parsed) {
		return
	}
	p.forgetSlice(key)
	if parsed == nil {
		return
	}
	p.slices[key] = parsed
	svc := types.NamespacedName{Namespace: key.Namespace, Name: parsed.service}
	if p.bySvc[svc] == nil {
		p.bySvc[svc] = map[string]*slice{}
	}
	p.bySvc[svc][key.Name] = parsed
	p.dirty[svc] = true
}

// DeleteEndpointSlice forgets an EndpointSlice.
func (p *Proxy) DeleteEndpointSlice(namespace, name string) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetSlice(key)
	delete(p.warned, "endpointslice "+key.String())
}

// forgetSlice removes a slice from its service. Must be called with p.mu held.
func (p *Proxy) forgetSlice(key types.NamespacedName) {
	old := p.slices[key]
	if old == nil {
		return
	}
	delete(p.slices, key)
	svc := types.NamespacedName{Namespace: key.Namespace, Name: old.service}
	delete(p.bySvc[svc], key.Name)
	if len(p.bySvc[svc]) == 0 {
		delete(p.bySvc, svc)
	}
	p.dirty[svc] = true
}

// warnOnce logs a problem of an object the first time it is seen, until
// the object is deleted: informers resend objects, logs should not.
// Must be called with p.mu held.
func (p *Proxy) warnOnce(obj, msg string, args ...any) {
	seen := p.warned[obj]
	if seen == nil {
		seen = map[string]bool{}
		p.warned[obj] = seen
	}
	k := msg + fmt.Sprint(args...)
	if seen[k] {
		return
	}
	seen[k] = true
	p.log.Warn("service proxy: "+msg, append([]any{"object", obj}, args...)...)
}
