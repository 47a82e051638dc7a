// Package proxy is a node's Service proxy: it programs nftables so that
// connections to a Service's IPv4 cluster IP reach one of its ready
// endpoints, as kube-proxy's nftables mode does (KEP-3866). The node
// agent feeds it Services and EndpointSlices and calls Sync.
//
// Everything lives in one table of the ip family, Config.Table:
//
//   - nat-prerouting (priority dstnat) and nat-output (-100) jump to
//     services, which looks up "ip daddr . meta l4proto . th dport" in the
//     verdict map service-ips and goes to that service port's chain,
//     service-<hash>-<ns>/<name>/<proto>/<port name>.
//   - A service port's chain marks the packet for masquerade when its
//     source is outside Config.ClusterCIDR (the node, another host), then
//     DNATs it to one endpoint: rule i of N is "numgen random mod N-i == 0
//     ... dnat to ip:port" (the last one unconditional), which gives each
//     endpoint 1/N of the connections. With ClientIP session affinity each
//     endpoint has a timeout set affinity-<hash>-<...>__<ip>/<port> of
//     recent clients: rules checking them come first, and every DNAT to the
//     endpoint refreshes its set.
//   - nat-postrouting (srcnat) jumps to masquerading, which masquerades
//     packets marked 0x4000 and hairpin ones (a pod reaching itself
//     through a Service: "ip saddr . ip daddr" is in the set hairpin, which
//     holds "ip . ip" for every endpoint), clearing the mark.
//   - filter-input, filter-forward and filter-output (priority filter,
//     after DNAT) send new connections still addressed to a cluster IP to
//     reject-chain, which answers a TCP reset or an ICMP port unreachable
//     at once: through the map no-endpoint-services those to a service
//     port without usable endpoints, through the set cluster-ips those to
//     any other port of a cluster IP. reject is not allowed at prerouting,
//     hence the filter hooks; DNAT has happened by then, so an address
//     still equal to a cluster IP means no endpoint took it.
//
// kube-proxy has a chain per endpoint as well, and picks one with an
// anonymous "numgen random mod N vmap { ... }". Both measured badly here
// (nft 1.0.6, kernel 6.18, services of 10 endpoints): the kernel scans
// every set of the table to name each anonymous set, so a full sync grows
// quadratically (17 s for 4,000 services, over 2 minutes for 10,000); and
// each nft run dumps every chain of the table while each commit re-checks
// all that the base chains reach, so with 110,000 chains a one-service
// change cost 0.65 s, against 0.1 s with one chain per service port
// (BenchmarkSync has the figures of this layout).
//
// Sync writes, in one transaction, what changed since the last one: the
// chains, sets and map elements of the services whose Service or slices
// changed; a chain whose rules did not change is not touched, and chains
// and sets no longer used are deleted after the rules and elements that
// used them are gone. The first Sync, and the one after a failed Sync, is
// a full sync: it lists the table, adds every object and flushes those
// that existed (but the affinity sets: clients keep their endpoint), fills
// them again and deletes what else is there (a previous process's
// services), all in one transaction: the table is never deleted, so
// traffic flows throughout.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	// NFT is the handle of Table in family ip. Nil: one made by
	// knftables.New with the UseNetlink option (listing a large table
	// through nft's JSON output takes seconds), run in the calling
	// thread's network namespace. Unit tests pass knftables.NewFake.
	NFT    knftables.Interface
	Logger *slog.Logger
}

// Proxy keeps a node's Service rules in nftables. Its methods may be
// called from several goroutines.
type Proxy struct {
	cfg  Config
	nft  knftables.Interface
	log  *slog.Logger
	cidr string // ClusterCIDR for rules, "" without one

	mu       sync.Mutex // guards what the informers said, below
	services map[types.NamespacedName]*service
	slices   map[types.NamespacedName]*slice            // by slice
	bySvc    map[types.NamespacedName]map[string]*slice // by service, then slice name
	dirty    map[types.NamespacedName]bool
	needFull bool
	warned   map[string]map[string]bool // by object

	syncMu  sync.Mutex // one Sync at a time; guards what the kernel has, below
	written map[types.NamespacedName]*svcRules
	picks   map[int]bool // the pick-<N> chains
	stores  [numStores]*elemStore
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
		picks:    map[int]bool{},
	}
	if cidr := cfg.ClusterCIDR; cidr.IsValid() {
		if !cidr.Addr().Is4() {
			return nil, fmt.Errorf("service proxy: cluster CIDR %s is not IPv4", cidr)
		}
		p.cidr = cidr.Masked().String()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.nft == nil {
		nft, err := knftables.New(knftables.IPv4Family, cfg.Table, knftables.UseNetlink)
		if err != nil {
			return nil, fmt.Errorf("service proxy: nftables table %s: %w", cfg.Table, err)
		}
		p.nft = nft
	}
	for i := range p.stores {
		p.stores[i] = newElemStore(storeDefs[i])
	}
	return p, nil
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
