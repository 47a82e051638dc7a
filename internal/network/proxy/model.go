package proxy

import (
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The informers' objects are reduced on arrival to what the rules need,
// so that an update that changes nothing the proxy uses (status, labels,
// a resync) is recognised and costs no nft transaction, and so that Sync
// can read them without the lock: a stored value is never modified, only
// replaced.

// defaultAffinitySeconds is the API's default ClientIP affinity timeout.
const defaultAffinitySeconds = 10800

// service is what the proxy uses of a Service.
type service struct {
	ips           []netip.Addr // IPv4 cluster IPs
	lbIPs         []netip.Addr // IPv4 load balancer addresses (status.loadBalancer.ingress)
	ports         []servicePort
	affinity      int  // ClientIP affinity timeout in seconds; 0: none
	localOnly     bool // internalTrafficPolicy Local
	externalLocal bool // externalTrafficPolicy Local (node ports)
	healthCheck   int  // healthCheckNodePort; 0: none
}

type servicePort struct {
	name     string
	proto    string // tcp, udp or sctp
	port     int
	nodePort int // 0: none
}

// slice is what the proxy uses of an EndpointSlice: its usable
// endpoints only (ready and not terminating).
type slice struct {
	service   string // name of its Service, in the slice's namespace
	ports     []servicePort
	endpoints []endpoint
}

type endpoint struct {
	addr netip.Addr
	node string
}

// protocol maps an API protocol to its nft name ("" for an unknown one).
func protocol(p corev1.Protocol) string {
	switch p {
	case corev1.ProtocolTCP, "":
		return "tcp"
	case corev1.ProtocolUDP:
		return "udp"
	case corev1.ProtocolSCTP:
		return "sctp"
	}
	return ""
}

// parseService reduces svc; nil means no rules (ExternalName).
// Invalid ports are skipped and logged once. Must be called with p.mu held.
func (p *Proxy) parseService(svc *corev1.Service) *service {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	obj := "service " + svc.Namespace + "/" + svc.Name
	s := &service{localOnly: svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal}
	nodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	s.externalLocal = nodePorts && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if n := int(svc.Spec.HealthCheckNodePort); s.externalLocal && n > 0 && n <= 65535 {
		s.healthCheck = n
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if ip == corev1.ClusterIPNone || ip == "" {
			continue
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			p.warnOnce(obj, "invalid cluster IP", "ip", ip)
			continue
		}
		if addr.Is4() && !slices.Contains(s.ips, addr) {
			s.ips = append(s.ips, addr) // IPv6 ones are another family's business
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		s.lbIPs = loadBalancerIPs(svc)
	}
	seen := map[string]bool{}
	for _, sp := range svc.Spec.Ports {
		proto := protocol(sp.Protocol)
		switch {
		case proto == "":
			p.warnOnce(obj, "unsupported protocol, port skipped", "port", sp.Name, "protocol", sp.Protocol)
			continue
		case sp.Port <= 0 || sp.Port > 65535:
			p.warnOnce(obj, "invalid port number, port skipped", "port", sp.Name, "number", sp.Port)
			continue
		}
		port := servicePort{name: sp.Name, proto: proto, port: int(sp.Port)}
		key := proto + "/" + strconv.Itoa(port.port)
		if seen[key] || seen["name/"+sp.Name] {
			p.warnOnce(obj, "duplicate port, skipped", "port", sp.Name, "number", sp.Port)
			continue
		}
		seen[key], seen["name/"+sp.Name] = true, true
		switch n := int(sp.NodePort); {
		case !nodePorts || n == 0:
		case n < 0 || n > 65535 || seen["node/"+proto+"/"+strconv.Itoa(n)]:
			p.warnOnce(obj, "invalid or duplicate node port, node port skipped", "port", sp.Name, "nodePort", n)
		default:
			port.nodePort = n
			seen["node/"+proto+"/"+strconv.Itoa(n)] = true
		}
		s.ports = append(s.ports, port)
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		s.affinity = defaultAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			if t := int(*c.ClientIP.TimeoutSeconds); t > 0 && t <= 86400 {
				s.affinity = t
			} else {
				p.warnOnce(obj, "invalid session affinity timeout, using the default", "seconds", t)
			}
		}
	}
	return s
}

// loadBalancerIPs are the IPv4 addresses of a LoadBalancer service's
// status that the proxy takes traffic for: not those of ipMode Proxy,
// whose load balancer sends traffic to the nodes itself.
func loadBalancerIPs(svc *corev1.Service) []netip.Addr {
	var ips []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
			continue
		}
		if a, err := netip.ParseAddr(in.IP); err == nil && a.Is4() && !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
	}
	return ips
}

// parseSlice reduces es; nil means it contributes nothing (no
// kubernetes.io/service-name label, or not an IPv4 slice). Invalid ports
// and endpoints are skipped and logged once. Must be called with p.mu held.
func (p *Proxy) parseSlice(es *discoveryv1.EndpointSlice) *slice {
	obj := "endpointslice " + es.Namespace + "/" + es.Name
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		p.warnOnce(obj, "no "+discoveryv1.LabelServiceName+" label, ignored")
		return nil
	}
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		return nil // IPv6 and FQDN slices are not this proxy's
	}
	s := &slice{service: name}
	for _, ep := range es.Ports {
		var sp servicePort
		if ep.Name != nil {
			sp.name = *ep.Name
		}
		var proto corev1.Protocol
		if ep.Protocol != nil {
			proto = *ep.Protocol
		}
		if sp.proto = protocol(proto); sp.proto == "" {
			p.warnOnce(obj, "unsupported protocol, port skipped", "port", sp.name, "protocol", proto)
			continue
		}
		if ep.Port == nil || *ep.Port <= 0 || *ep.Port > 65535 {
			p.warnOnce(obj, "invalid port number, port skipped", "port", sp.name)
			continue
		}
		sp.port = int(*ep.Port)
		s.ports = append(s.ports, sp)
	}
	for _, ep := range es.Endpoints {
		c := ep.Conditions
		if (c.Ready != nil && !*c.Ready) || (c.Terminating != nil && *c.Terminating) {
			continue
		}
		if len(ep.Addresses) == 0 {
			p.warnOnce(obj, "endpoint without address, skipped")
			continue
		}
		addr, err := netip.ParseAddr(ep.Addresses[0])
		if err != nil || !addr.Is4() {
			p.warnOnce(obj, "endpoint address is not IPv4, skipped", "address", ep.Addresses[0])
			continue
		}
		e := endpoint{addr: addr}
		if ep.NodeName != nil {
			e.node = *ep.NodeName
		}
		s.endpoints = append(s.endpoints, e)
	}
	return s
}

// endpointsFor returns the endpoints of a service port, deduplicated (a
// pod may appear in two slices while they are rebalanced) and sorted, as
// address and target port.
func endpointsFor(port servicePort, from []*slice, localOnly bool, node string) []netip.AddrPort {
	var eps []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, s := range from {
		target := 0
		for _, sp := range s.ports {
			if sp.name == port.name && sp.proto == port.proto {
				target = sp.port
				break
			}
		}
		if target == 0 {
			continue
		}
		for _, e := range s.endpoints {
			if localOnly && e.node != node {
				continue
			}
			ap := netip.AddrPortFrom(e.addr, uint16(target))
			if !seen[ap] {
				seen[ap] = true
				eps = append(eps, ap)
			}
		}
	}
	slices.SortFunc(eps, netip.AddrPort.Compare)
	return eps
}

// localAddrs are the endpoint addresses that may be pods of this node:
// those of node, and those whose node is unknown (or every one, when the
// proxy has no node name).
func localAddrs(from []*slice, node string) map[netip.Addr]bool {
	local := map[netip.Addr]bool{}
	for _, s := range from {
		for _, e := range s.endpoints {
			if node == "" || e.node == "" || e.node == node {
				local[e.addr] = true
			}
		}
	}
	return local
}

func sliceKey(es *discoveryv1.EndpointSlice) types.NamespacedName {
	return types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
}

func equalService(a, b *service) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.ips, b.ips) && slices.Equal(a.lbIPs, b.lbIPs) && slices.Equal(a.ports, b.ports) &&
		a.affinity == b.affinity && a.localOnly == b.localOnly && a.externalLocal == b.externalLocal &&
		a.healthCheck == b.healthCheck
}

func equalSlice(a, b *slice) bool {
	return a.service == b.service && slices.Equal(a.ports, b.ports) && slices.Equal(a.endpoints, b.endpoints)
}
