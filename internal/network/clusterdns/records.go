package clusterdns

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

type objKey struct{ namespace, name string }

// service is what DNS needs of a Service.
type service struct {
	headless        bool
	externalName    string // lowercase FQDN; set for an ExternalName service only
	clusterIPs      []netip.Addr
	ports           []port
	publishNotReady bool
}

type port struct {
	name, proto string // lowercase: the labels of SRV names
	port        uint16
}

// endpointSlice is what DNS needs of an EndpointSlice.
type endpointSlice struct {
	service   objKey
	endpoints []endpoint
	ports     []port
}

type endpoint struct {
	addrs    []netip.Addr
	hostname string // lowercase DNS label, or ""
	ready    bool
}

func serviceFrom(svc *corev1.Service) *service {
	out := &service{publishNotReady: svc.Spec.PublishNotReadyAddresses}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		// CoreDNS publishes no CNAME to an address or to a malformed name.
		name := lowerASCII(dns.Fqdn(svc.Spec.ExternalName))
		if _, ok := dns.IsDomainName(name); ok && name != "." && net.ParseIP(svc.Spec.ExternalName) == nil {
			out.externalName = name
		}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		out.headless = true
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				out.clusterIPs = append(out.clusterIPs, a.Unmap())
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		out.ports = append(out.ports, port{name: lowerASCII(p.Name), proto: protoLabel(p.Protocol), port: uint16(p.Port)})
	}
	return out
}

func protoLabel(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// sliceFrom reports false for a slice of no service.
func sliceFrom(es *discoveryv1.EndpointSlice) (*endpointSlice, bool) {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, false
	}
	out := &endpointSlice{service: objKey{es.Namespace, name}}
	v4 := es.AddressType == discoveryv1.AddressTypeIPv4
	if !v4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
		return out, true // FQDN endpoints have no records
	}
	for _, ep := range es.Endpoints {
		e := endpoint{ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready}
		if ep.Hostname != nil {
			if h := lowerASCII(*ep.Hostname); isLabel(h) {
				e.hostname = h
			}
		}
		for _, a := range ep.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is4() == v4 {
				e.addrs = append(e.addrs, ip.Unmap())
			}
		}
		out.endpoints = append(out.endpoints, e)
	}
	for _, p := range es.Ports {
		if p.Port == nil {
			continue
		}
		var pp port
		pp.port = uint16(*p.Port)
		if p.Name != nil {
			pp.name = lowerASCII(*p.Name)
		}
		var proto corev1.Protocol
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		pp.proto = protoLabel(proto)
		out.ports = append(out.ports, pp)
	}
	return out, true
}

func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// rrset is the records of one name, as one service publishes them.
type rrset struct {
	a, aaaa, srv, extra, ptr []dns.RR // extra: the addresses of srv's targets
	cname                    *dns.CNAME
}

// build returns the records of service key by name.
func (s *Server) build(key objKey, svc *service, slices []*endpointSlice) map[string]*rrset {
	out := map[string]*rrset{}
	get := func(name string) *rrset {
		rs := out[name]
		if rs == nil {
			rs = &rrset{}
			out[name] = rs
		}
		return rs
	}
	svcName := lowerASCII(key.name + "." + key.namespace + "." + s.svcZone)
	self := get(svcName) // the name exists even with no records yet
	switch {
	case svc.externalName != "":
		self.cname = &dns.CNAME{Hdr: s.hdr(svcName, dns.TypeCNAME), Target: svc.externalName}
	case !svc.headless:
		var addrs []dns.RR
		for _, ip := range svc.clusterIPs {
			addrs = append(addrs, self.addAddr(s, svcName, ip))
			rev := reverse(ip)
			get(rev).ptr = append(get(rev).ptr, &dns.PTR{Hdr: s.hdr(rev, dns.TypePTR), Ptr: svcName})
		}
		for _, p := range svc.ports {
			s.addSRV(self, svcName, p, svcName, addrs)
			if p.name != "" {
				n := srvName(p, svcName)
				s.addSRV(get(n), n, p, svcName, addrs)
			}
		}
	default:
		for _, es := range slices {
			for _, ep := range es.endpoints {
				if !ep.ready && !svc.publishNotReady {
					continue
				}
				for _, ip := range ep.addrs {
					host := ep.hostname
					if host == "" {
						host = dashed.Replace(ip.String())
					}
					hostName := host + "." + svcName
					self.addAddr(s, svcName, ip)
					addr := get(hostName).addAddr(s, hostName, ip)
					rev := reverse(ip)
					get(rev).ptr = append(get(rev).ptr, &dns.PTR{Hdr: s.hdr(rev, dns.TypePTR), Ptr: hostName})
					for _, p := range es.ports {
						s.addSRV(self, svcName, p, hostName, []dns.RR{addr})
						if p.name != "" {
							n := srvName(p, svcName)
							s.addSRV(get(n), n, p, hostName, []dns.RR{addr})
						}
					}
				}
			}
		}
	}
	for _, rs := range out {
		rs.finish()
	}
	return out
}

// dashed is how CoreDNS names an endpoint without a hostname: by its
// address, 10-0-0-5 or fd00--5.
var dashed = strings.NewReplacer(".", "-", ":", "-")

func srvName(p port, svcName string) string {
	return "_" + p.name + "._" + p.proto + "." + svcName
}

func (s *Server) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: s.ttl}
}

func (rs *rrset) addAddr(s *Server, name string, ip netip.Addr) dns.RR {
	rr := s.addrRR(name, ip)
	if ip.Is4() {
		rs.a = append(rs.a, rr)
	} else {
		rs.aaaa = append(rs.aaaa, rr)
	}
	return rr
}

func (s *Server) addSRV(rs *rrset, owner string, p port, target string, addrs []dns.RR) {
	rs.srv = append(rs.srv, &dns.SRV{Hdr: s.hdr(owner, dns.TypeSRV), Port: p.port, Target: target})
	rs.extra = append(rs.extra, addrs...)
}

func reverse(ip netip.Addr) string {
	name, _ := dns.ReverseAddr(ip.String())
	return name
}

// finish puts rs in a stable order without duplicates (an address may be
// in two slices of a service) and weighs the SRV records evenly, as
// CoreDNS does.
func (rs *rrset) finish() {
	rs.a, rs.aaaa, rs.ptr = sortRRs(rs.a), sortRRs(rs.aaaa), sortRRs(rs.ptr)
	rs.srv, rs.extra = sortRRs(rs.srv), sortRRs(rs.extra)
	for _, rr := range rs.srv {
		rr.(*dns.SRV).Weight = uint16(max(100/len(rs.srv), 1))
	}
}

func sortRRs(rrs []dns.RR) []dns.RR {
	slices.SortFunc(rrs, func(x, y dns.RR) int {
		if c := cmp.Compare(x.Header().Rrtype, y.Header().Rrtype); c != 0 {
			return c
		}
		switch x := x.(type) {
		case *dns.A:
			return strings.Compare(string(x.A.To16()), string(y.(*dns.A).A.To16()))
		case *dns.AAAA:
			return strings.Compare(string(x.AAAA), string(y.(*dns.AAAA).AAAA))
		case *dns.PTR:
			return strings.Compare(x.Ptr, y.(*dns.PTR).Ptr)
		case *dns.SRV:
			y := y.(*dns.SRV)
			return cmp.Or(strings.Compare(x.Target, y.Target), cmp.Compare(x.Port, y.Port))
		}
		return 0
	})
	return slices.CompactFunc(rrs, dns.IsDuplicate)
}
