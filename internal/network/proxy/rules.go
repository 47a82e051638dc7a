package proxy

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// The table's fixed objects.
const (
	servicesChain     = "services"
	endpointsCheck    = "endpoints-check"
	clusterIPsCheck   = "cluster-ips-check"
	rejectChain       = "reject-chain"
	markMasqChain     = "mark-for-masquerade"
	masqueradingChain = "masquerading"
	masqMark          = "0x4000" // kube-proxy's bit
	pickPrefix        = "pick-"  // pick-<N>: DNAT to one of N endpoints
)

type baseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

var baseChains = []baseChain{
	{"filter-input", knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{"filter-forward", knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{"filter-output", knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	{"nat-prerouting", knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	// nft 1.0.6 accepts the name dstnat at prerouting only.
	{"nat-output", knftables.NATType, knftables.OutputHook, "-100"},
	{"nat-postrouting", knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// fixedRules returns the rules of the fixed chains.
func (p *Proxy) fixedRules() []chainRules {
	check := []string{"ct state new jump " + endpointsCheck, "ct state new jump " + clusterIPsCheck}
	services := []string{"ip daddr . meta l4proto . th dport vmap @" + p.stores[storeServiceIPs].name}
	endpoints := []string{"ip daddr . meta l4proto . th dport vmap @" + p.stores[storeNoEndpoints].name}
	if p.nodeIPs != "" {
		services = append(services, "ip daddr "+p.nodeIPs+" meta l4proto . th dport vmap @"+p.stores[storeNodePorts].name)
		endpoints = append(endpoints, "ip daddr "+p.nodeIPs+" meta l4proto . th dport vmap @"+p.stores[storeNoEndpointNodePorts].name)
	}
	return []chainRules{
		{"filter-input", check},
		{"filter-forward", check},
		{"filter-output", check},
		{"nat-prerouting", []string{"jump " + servicesChain}},
		{"nat-output", []string{"jump " + servicesChain}},
		{"nat-postrouting", []string{"jump " + masqueradingChain}},
		{servicesChain, services},
		{endpointsCheck, endpoints},
		{clusterIPsCheck, []string{"ip daddr @" + p.stores[storeClusterIPs].name + " goto " + rejectChain}},
		{rejectChain, []string{"meta l4proto tcp reject with tcp reset", "reject"}},
		{markMasqChain, []string{"mark set mark or " + masqMark}},
		{masqueradingChain, []string{
			"ct status dnat ip saddr . ip daddr @" + p.stores[storeHairpin].name + " jump " + markMasqChain,
			"mark and " + masqMark + " == 0 return",
			"mark set mark xor " + masqMark,
			"masquerade fully-random",
		}},
	}
}

// The sets and maps shared by all services, whose elements the services
// claim (see elemStore).
const (
	storeServiceIPs = iota
	storeNoEndpoints
	storeClusterIPs
	storeHairpin
	storeEndpointsTCP
	storeEndpointsUDP
	storeEndpointsSCTP
	storeNodePorts
	storeNoEndpointNodePorts
	storeNodePortEndpointsTCP
	storeNodePortEndpointsUDP
	storeNodePortEndpointsSCTP
	numStores
)

type storeDef struct {
	base, typ string // the name without its generation; nft type
	isMap     bool
	typeOf    bool    // typ is a typeof expression
	key, data []field // for netlink: the parts of the key and the value
}

// field is the kernel's form of a part of an element.
type field int

const (
	fieldAddr    field = iota // IPv4 address, 4 bytes
	fieldProto                // inet_proto, 1 byte
	fieldPort                 // inet_service, 2 bytes big-endian
	fieldBucket               // numgen's 32-bit integer, host byte order
	fieldVerdict              // "goto <chain>"
)

var storeDefs = [numStores]storeDef{
	{"service-ips", "ipv4_addr . inet_proto . inet_service : verdict", true, false,
		[]field{fieldAddr, fieldProto, fieldPort}, []field{fieldVerdict}},
	{"no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict", true, false,
		[]field{fieldAddr, fieldProto, fieldPort}, []field{fieldVerdict}},
	{"cluster-ips", "ipv4_addr", false, false, []field{fieldAddr}, nil},
	{"hairpin", "ipv4_addr . ipv4_addr", false, false, []field{fieldAddr, fieldAddr}, nil},
	// A service port's endpoint i of N, a map per protocol: the key's
	// last part is the bucket "numgen random mod N" draws in pick-<N>.
	// There is no type name for numgen's 32-bit integer, hence typeof.
	// One map for all protocols ("meta l4proto . th dport") is refused by
	// nft 1.0.6 in a rule added once the map exists ("conflicting
	// protocols specified: tcp vs. th", its typeof read back from the
	// kernel).
	{"endpoints-tcp", "ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport", true, true,
		[]field{fieldAddr, fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
	{"endpoints-udp", "ip daddr . udp dport . numgen random mod 1 : ip daddr . udp dport", true, true,
		[]field{fieldAddr, fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
	{"endpoints-sctp", "ip daddr . sctp dport . numgen random mod 1 : ip daddr . sctp dport", true, true,
		[]field{fieldAddr, fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
	// Node ports, to the node's addresses (Config.NodeIPs): as above,
	// keyed by protocol and node port instead of cluster IP and port.
	{"service-nodeports", "inet_proto . inet_service : verdict", true, false,
		[]field{fieldProto, fieldPort}, []field{fieldVerdict}},
	{"no-endpoint-nodeports", "inet_proto . inet_service : verdict", true, false,
		[]field{fieldProto, fieldPort}, []field{fieldVerdict}},
	{"nodeport-endpoints-tcp", "tcp dport . numgen random mod 1 : ip daddr . tcp dport", true, true,
		[]field{fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
	{"nodeport-endpoints-udp", "udp dport . numgen random mod 1 : ip daddr . udp dport", true, true,
		[]field{fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
	{"nodeport-endpoints-sctp", "sctp dport . numgen random mod 1 : ip daddr . sctp dport", true, true,
		[]field{fieldPort, fieldBucket}, []field{fieldAddr, fieldPort}},
}

// pick is a chain that DNATs to one of n endpoints, shared by every
// service port of n endpoints of its kind.
type pick struct {
	kind int
	n    int
	m    int // pickLoadBalancerLocal: this node's endpoints, the first m of n
}

const (
	pickClusterIP     = iota // pick-<N>: to a cluster IP
	pickNodePort             // nodeport-pick-<N>: to a node port, masqueraded
	pickNodePortLocal        // nodeport-local-<N>: externalTrafficPolicy Local, source kept
	pickExternalLocal        // external-local-<N>: to a load balancer address, Local, source kept
	// lb-local-<N>-<M>: to a load balancer address, Local, whose N
	// endpoints are this node's M first: from pods and from the node
	// itself to any of the N (pick-<N>), from elsewhere to this node's
	// (external-local-<M>; none: left to the endpoints check, which drops).
	pickLoadBalancerLocal
)

func (k pick) chain() string {
	if k.kind == pickLoadBalancerLocal {
		return "lb-local-" + strconv.Itoa(k.n) + "-" + strconv.Itoa(k.m)
	}
	return [...]string{pickPrefix, "nodeport-" + pickPrefix, "nodeport-local-", "external-local-"}[k.kind] + strconv.Itoa(k.n)
}

// byAddress: the pick's endpoints map is keyed by destination address
// and port (a cluster IP's or a load balancer address's), not by node
// port.
func (k pick) byAddress() bool { return k.kind == pickClusterIP || k.kind == pickExternalLocal }

func comparePicks(a, b pick) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.n, b.n), cmp.Compare(a.m, b.m))
}

// endpointStore returns the store of a protocol's endpoints, those of
// node ports if nodePort.
func endpointStore(proto string, nodePort bool) int {
	i := storeEndpointsTCP
	if nodePort {
		i = storeNodePortEndpointsTCP
	}
	switch proto {
	case "udp":
		return i + 1
	case "sctp":
		return i + 2
	}
	return i
}

// pickRules returns the rules of a pick chain: masquerade marking (to a
// cluster IP from outside the cluster; to a node port always, but for
// externalTrafficPolicy Local), then the DNAT to the endpoint of bucket
// "numgen random mod n" of the service port in its protocol's endpoints
// map.
func (p *Proxy) pickRules(k pick) chainRules {
	var rules []string
	if k.kind == pickLoadBalancerLocal {
		external := ""
		if k.m > 0 {
			external = pick{kind: pickExternalLocal, n: k.m}.chain()
		}
		return chainRules{k.chain(), p.bySource(pick{kind: pickClusterIP, n: k.n}.chain(), external)}
	}
	switch {
	case k.kind == pickNodePort:
		rules = append(rules, "jump "+markMasqChain)
	case k.kind == pickClusterIP && p.cidr != "":
		rules = append(rules, "ip saddr != "+p.cidr+" jump "+markMasqChain)
	}
	for _, proto := range []string{"tcp", "udp", "sctp"} {
		key := "ip daddr . " + proto + " dport"
		if !k.byAddress() {
			key = proto + " dport"
		}
		rules = append(rules, "meta l4proto "+proto+" dnat to "+key+" . numgen random mod "+
			strconv.Itoa(k.n)+" map @"+p.stores[endpointStore(proto, !k.byAddress())].name)
	}
	return chainRules{k.chain(), rules}
}

// svcRules is what one Service puts in the table.
type svcRules struct {
	chains []chainRules // of the ports with session affinity
	sets   []setDef     // affinity sets
	picks  []pick       // pick chains the other ports go to
	claims []claim
}

type chainRules struct {
	name  string
	rules []string
}

type setDef struct {
	name    string
	timeout int // seconds
}

// claim is an element a service wants in a shared set or map.
type claim struct {
	store int
	key   string // nft syntax, " . " between the parts of a concatenation
	value string // for a map
}

// maxName leaves room in nft's 256 bytes; the hash keeps truncated names
// distinct.
const maxName = 240

// objName names a per-service object: prefix, a hash of hashed, then the
// readable part, as kube-proxy does ("service-ULMVA6XW-ns1/svc1/tcp/p80").
// Namespaces, names and port names are [a-z0-9-], all allowed in nft
// names, and "/" cannot occur in them.
func objName(prefix, readable, hashed string) string {
	sum := sha256.Sum256([]byte(hashed))
	name := prefix + base32.StdEncoding.EncodeToString(sum[:5]) + "-" + readable
	if len(name) > maxName {
		name = name[:maxName]
	}
	return name
}

// rulesFor computes what svc puts in the table; nil: nothing.
func (p *Proxy) rulesFor(key types.NamespacedName, svc *service, from []*slice) *svcRules {
	if svc == nil || len(svc.ips) == 0 {
		return nil
	}
	r := &svcRules{}
	local := localAddrs(from, p.cfg.NodeName)
	for _, port := range svc.ports {
		eps := endpointsFor(port, from, svc.localOnly, p.cfg.NodeName)
		store, verdict := storeNoEndpoints, "goto "+rejectChain
		switch {
		case len(eps) > 0 && svc.affinity > 0:
			store, verdict = storeServiceIPs, "goto "+p.ensurePortChain(r, key, port, eps, svc.affinity, false)
		case len(eps) > 0:
			store, verdict = storeServiceIPs, "goto "+r.pick(pick{kind: pickClusterIP, n: len(eps)})
		}
		for _, ip := range svc.ips {
			r.claims = append(r.claims, claim{store, ip.String() + " . " + port.proto + " . " + strconv.Itoa(port.port), verdict})
			if svc.affinity == 0 {
				r.claimEndpoints(endpointStore(port.proto, false), ip.String()+" . "+strconv.Itoa(port.port), eps)
			}
		}
		if port.nodePort > 0 && p.nodeIPs != "" {
			p.nodePortRules(r, key, svc, port, from)
		}
		if len(svc.lbIPs) > 0 {
			p.loadBalancerRules(r, key, svc, port, from)
		}
		// Hairpin: only a pod of this node can reach itself here.
		for _, ep := range eps {
			if local[ep.Addr()] {
				a := ep.Addr().String()
				r.claims = append(r.claims, claim{storeHairpin, a + " . " + a, ""})
			}
		}
	}
	// A load balancer address rejects what no rule DNATs, as a cluster IP
	// does: on the node that holds it, it is a local address, and the
	// node's own sockets must not answer on it.
	for _, ip := range append(slices.Clip(svc.ips), svc.lbIPs...) {
		r.claims = append(r.claims, claim{storeClusterIPs, ip.String(), ""})
	}
	return r
}

// hasChain says whether r has the per-service chain called name.
func (r *svcRules) hasChain(name string) bool {
	return slices.ContainsFunc(r.chains, func(c chainRules) bool { return c.name == name })
}

// pick returns the chain of k, noting that r uses it.
func (r *svcRules) pick(k pick) string {
	if !slices.Contains(r.picks, k) {
		r.picks = append(r.picks, k)
	}
	return k.chain()
}

// claimEndpoints claims the elements "<prefix> . i : endpoint i" of eps
// in an endpoints map.
func (r *svcRules) claimEndpoints(store int, prefix string, eps []netip.AddrPort) {
	for i, ep := range eps {
		r.claims = append(r.claims, claim{store, prefix + " . " + strconv.Itoa(i),
			ep.Addr().String() + " . " + strconv.Itoa(int(ep.Port()))})
	}
}

// nodePortRules adds what a service port's node port needs to r: with
// externalTrafficPolicy Cluster every usable endpoint, masqueraded; with
// Local this node's only, the client's address kept; session affinity
// through the port's chain (its local one for Local). Without endpoints
// connections are refused, as to a cluster IP; with Local and endpoints
// on other nodes only, dropped, as kube-proxy does (a load balancer's
// health check takes this node out instead).
func (p *Proxy) nodePortRules(r *svcRules, svcKey types.NamespacedName, svc *service, port servicePort, from []*slice) {
	key := port.proto + " . " + strconv.Itoa(port.nodePort)
	kind := pickNodePort
	if svc.externalLocal {
		kind = pickNodePortLocal
	}
	eps := endpointsFor(port, from, svc.externalLocal, p.cfg.NodeName)
	switch {
	case len(eps) > 0 && svc.affinity > 0:
		// The port's chain, as the load balancer address's: a client
		// kept on one endpoint; with Cluster every endpoint, what comes
		// from outside the pod network masqueraded; with Local this
		// node's, the client's address kept.
		chain := p.ensurePortChain(r, svcKey, port, eps, svc.affinity, svc.externalLocal)
		r.claims = append(r.claims, claim{storeNodePorts, key, "goto " + chain})
	case len(eps) > 0:
		r.claims = append(r.claims, claim{storeNodePorts, key, "goto " + r.pick(pick{kind: kind, n: len(eps)})})
		r.claimEndpoints(endpointStore(port.proto, true), strconv.Itoa(port.nodePort), eps)
	case svc.externalLocal && len(endpointsFor(port, from, false, "")) > 0:
		r.claims = append(r.claims, claim{storeNoEndpointNodePorts, key, "drop"})
	default:
		r.claims = append(r.claims, claim{storeNoEndpointNodePorts, key, "goto " + rejectChain})
	}
}

// loadBalancerRules adds what a service port needs on the service's load
// balancer addresses to r; they are keyed like cluster IPs, in the same
// maps. With externalTrafficPolicy Cluster every usable endpoint, through
// the cluster IP's pick chains, which masquerade what comes from outside
// the pod network. With Local, traffic from outside goes to this node's
// endpoints only, the client's address kept, and is dropped where only
// other nodes have endpoints (the address is announced by a node with
// one); traffic from the cluster's pods and from the node itself goes to
// any endpoint, as to the cluster IP, the way kube-proxy short-circuits
// it (a pod on a node without an endpoint can reach the address). Session
// affinity goes by the port's chain (for Local from outside, by a chain of
// this node's endpoints). No endpoint at all: refused.
func (p *Proxy) loadBalancerRules(r *svcRules, svcKey types.NamespacedName, svc *service, port servicePort, from []*slice) {
	all := endpointsFor(port, from, false, "")
	local := endpointsFor(port, from, true, p.cfg.NodeName)
	for _, ip := range svc.lbIPs {
		key := ip.String() + " . " + port.proto + " . " + strconv.Itoa(port.port)
		epKey := ip.String() + " . " + strconv.Itoa(port.port)
		verdict := ""
		switch {
		case len(all) == 0:
			r.claims = append(r.claims, claim{storeNoEndpoints, key, "goto " + rejectChain})
			continue
		case !svc.externalLocal && svc.affinity > 0:
			verdict = p.ensurePortChain(r, svcKey, port, all, svc.affinity, false)
		case !svc.externalLocal:
			verdict = r.pick(pick{kind: pickClusterIP, n: len(all)})
			r.claimEndpoints(endpointStore(port.proto, false), epKey, all)
		case svc.affinity > 0:
			// As lb-local-<N>-<M>, with a chain of the service's own:
			// pods and the node to the port's chain, others to its local one.
			verdict = p.lbLocalAffinityChain(r, svcKey, port, all, local, svc.affinity)
		default:
			// This node's endpoints first: external-local-<M> draws
			// among them, pick-<N> among all.
			r.pick(pick{kind: pickClusterIP, n: len(all)})
			if len(local) > 0 {
				r.pick(pick{kind: pickExternalLocal, n: len(local)})
			}
			verdict = r.pick(pick{kind: pickLoadBalancerLocal, n: len(all), m: len(local)})
			others := slices.DeleteFunc(slices.Clone(all), func(ep netip.AddrPort) bool { return slices.Contains(local, ep) })
			r.claimEndpoints(endpointStore(port.proto, false), epKey, append(slices.Clip(local), others...))
		}
		r.claims = append(r.claims, claim{storeServiceIPs, key, "goto " + verdict})
		if svc.externalLocal && len(local) == 0 {
			// From outside, nothing to go to: the endpoints check drops it.
			r.claims = append(r.claims, claim{storeNoEndpoints, key, "drop"})
		}
	}
}

// lbLocalAffinityChain adds the chain that a load balancer address with
// externalTrafficPolicy Local and session affinity goes to: traffic from
// the cluster's pods and the node itself to the port's chain (every
// endpoint), the rest to its local chain (this node's; none: on to the
// endpoints check, which drops it). It returns the chain's name.
func (p *Proxy) lbLocalAffinityChain(r *svcRules, key types.NamespacedName, port servicePort, all, local []netip.AddrPort, affinity int) string {
	base := portBase(key, port)
	name := objName("service-lb-local-", base, base)
	if r.hasChain(name) {
		return name
	}
	cluster, external := p.ensurePortChain(r, key, port, all, affinity, false), ""
	if len(local) > 0 {
		external = p.ensurePortChain(r, key, port, local, affinity, true)
	}
	r.chains = append(r.chains, chainRules{name, p.bySource(cluster, external)})
	return name
}

// bySource are the rules of a Local load balancer address's chain: the
// cluster's pods and the node itself go to cluster (any endpoint), the
// rest to external ("": on to the endpoints check, which drops it).
func (p *Proxy) bySource(cluster, external string) []string {
	var rules []string
	if p.cidr != "" {
		rules = append(rules, "ip saddr "+p.cidr+" goto "+cluster)
	}
	rules = append(rules, "fib saddr type local goto "+cluster)
	if external != "" {
		rules = append(rules, "goto "+external)
	}
	return rules
}

func portBase(key types.NamespacedName, port servicePort) string {
	return key.Namespace + "/" + key.Name + "/" + port.proto + "/" + port.name
}

// portChainName names the chain of a service port with session affinity.
func portChainName(key types.NamespacedName, port servicePort) string {
	base := portBase(key, port)
	return objName("service-", base, base)
}

// localPortChainName names the chain of a service port with session
// affinity and externalTrafficPolicy Local: this node's endpoints, the
// client's address kept.
func localPortChainName(key types.NamespacedName, port servicePort) string {
	base := portBase(key, port)
	return objName("service-local-", base, base)
}

// ensurePortChain adds the port's chain (its local one if local) to r
// unless r has it, and returns its name.
func (p *Proxy) ensurePortChain(r *svcRules, key types.NamespacedName, port servicePort, eps []netip.AddrPort, affinity int, local bool) string {
	name := portChainName(key, port)
	if local {
		name = localPortChainName(key, port)
	}
	if !r.hasChain(name) {
		p.portChain(r, key, port, eps, affinity, local)
	}
	return name
}

// portChain adds the chain of a service port with endpoints, and its
// affinity sets, to r and returns the chain's name. A local chain (this
// node's endpoints for externalTrafficPolicy Local) masquerades nothing.
func (p *Proxy) portChain(r *svcRules, key types.NamespacedName, port servicePort, eps []netip.AddrPort, affinity int, local bool) string {
	base := portBase(key, port)
	chain := portChainName(key, port)
	var rules []string
	if local {
		chain = localPortChainName(key, port)
	} else if p.cidr != "" {
		rules = append(rules, "ip saddr != "+p.cidr+" jump "+markMasqChain)
	}
	sets := make([]string, len(eps))
	if affinity > 0 {
		for i, ep := range eps {
			readable := base + "__" + ep.Addr().String() + "/" + strconv.Itoa(int(ep.Port()))
			// The timeout is part of the set, and of its name: a new
			// timeout makes a new set instead of failing to change one.
			sets[i] = objName("affinity-", readable, readable+"/"+strconv.Itoa(affinity))
			if !slices.ContainsFunc(r.sets, func(d setDef) bool { return d.name == sets[i] }) { // a local chain's are its cluster chain's
				r.sets = append(r.sets, setDef{sets[i], affinity})
			}
			rules = append(rules, "ip saddr @"+sets[i]+" meta l4proto "+port.proto+
				" update @"+sets[i]+" { ip saddr } dnat to "+ep.String())
		}
	}
	// Rule i takes 1/(N-i) of what the rules before it left: 1/N each.
	// (An anonymous numgen vmap would be one rule, but see the package doc.)
	for i, ep := range eps {
		rule := "meta l4proto " + port.proto
		if left := len(eps) - i; left > 1 {
			rule += " numgen random mod " + strconv.Itoa(left) + " == 0"
		}
		if affinity > 0 {
			rule += " update @" + sets[i] + " { ip saddr }"
		}
		rules = append(rules, rule+" dnat to "+ep.String())
	}
	r.chains = append(r.chains, chainRules{chain, rules})
	return chain
}
