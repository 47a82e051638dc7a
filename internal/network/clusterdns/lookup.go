package clusterdns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds a chain of ExternalName services (a loop included).
const maxChase = 8

// answerPod answers a name of the cluster domain that no service owns:
// a pod name, "<dashed address>.<namespace>.pod.<domain>", which exists
// for any address as in CoreDNS's "pods insecure" mode; else NXDOMAIN.
func (s *Server) answerPod(w dns.ResponseWriter, r *dns.Msg, q *query) {
	ip, exists := s.pod(q.lname)
	switch {
	case !exists:
		s.write(w, r, q, s.nxdomain)
	case ip.IsValid() && (q.qtype == addrType(ip) || q.qtype == dns.TypeANY):
		s.reply(w, r, q, dns.RcodeSuccess, true, []dns.RR{s.addrRR(q.name, ip)}, nil, nil)
	default:
		s.write(w, r, q, s.nodata)
	}
}

// pod tells whether lname is a pod name (ip valid) or a namespace of the
// pod zone (it exists, with no records).
func (s *Server) pod(lname string) (ip netip.Addr, exists bool) {
	rest, ok := strings.CutSuffix(lname, "."+s.podZone)
	if !ok {
		return netip.Addr{}, false
	}
	label, ns, ok := strings.Cut(rest, ".")
	if !ok {
		return netip.Addr{}, true // <namespace>.pod.<domain>
	}
	if strings.Contains(ns, ".") {
		return netip.Addr{}, false
	}
	var text string
	if strings.Count(label, "-") == 3 && !strings.Contains(label, "--") {
		text = strings.ReplaceAll(label, "-", ".")
	} else {
		text = strings.ReplaceAll(label, "-", ":")
	}
	ip, err := netip.ParseAddr(text)
	if err != nil || ip.Zone() != "" || (ip.Is4() != strings.Contains(text, ".")) {
		return netip.Addr{}, false
	}
	return ip, true
}

func addrType(ip netip.Addr) uint16 {
	if ip.Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

func (s *Server) addrRR(name string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: s.hdr(name, dns.TypeA), A: ip.AsSlice()}
	}
	return &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()}
}

// chase answers q, a name of an ExternalName service, with its CNAME and
// the records of its target: from this server's own names, or else from
// the upstreams (through the cache), since a pod's stub resolver (glibc,
// musl, Go's) expects the whole chain from the server it asks.
func (s *Server) chase(w dns.ResponseWriter, r *dns.Msg, q *query, e *entry) {
	answer := []dns.RR{e.cname}
	rcode := dns.RcodeSuccess
	var ns []dns.RR
	target := e.cname.Target
	for range maxChase {
		s.rw.RLock()
		te := s.names[target]
		s.rw.RUnlock()
		if te != nil && te.cname != nil {
			answer = append(answer, te.cname)
			target = te.cname.Target
			continue
		}
		if te != nil {
			if t := te.pick(q.qtype); t != nil {
				answer = append(answer, t.msg.Answer...)
			} else {
				ns = s.nodataFor(target).msg.Ns
			}
			break
		}
		if s.inDomain(target) {
			ip, exists := s.pod(target)
			switch {
			case !exists:
				rcode, ns = dns.RcodeNameError, s.nxdomain.msg.Ns
			case ip.IsValid() && q.qtype == addrType(ip):
				answer = append(answer, s.addrRR(target, ip))
			default:
				ns = s.nodata.msg.Ns
			}
			break
		}
		if len(s.upstreams) == 0 {
			break // the client's resolver may know more
		}
		key := cacheKey{name: target, qtype: q.qtype, do: q.do, cd: q.flags3 != 0}
		if d, ok := w.(deferrer); ok && s.cache.get(key, q.now) == nil {
			d.deferQuery()
			return
		}
		t, err := s.resolve(key, q.now)
		if err != nil {
			s.log.Debug("cluster DNS: resolving an ExternalName target", "name", q.name, "target", target, "err", err)
			break
		}
		age := ageOf(t, q.now)
		answer = append(answer, aged(t.msg.Answer, age)...)
		if rcode = t.msg.Rcode; len(t.msg.Answer) == 0 {
			ns = aged(t.msg.Ns, age)
		}
		break
	}
	s.reply(w, r, q, rcode, true, answer, ns, nil)
}
