package clusterdns

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// entry is the answers of one name that exists: precomputed per type; nil
// is no data of that type.
type entry struct {
	a, aaaa, srv, ptr, soa, cnameT *template
	cname                          *dns.CNAME // an ExternalName service's
}

// entENT is a name that exists only because names below it do.
var entENT = &entry{}

func (e *entry) pick(qtype uint16) *template {
	switch qtype {
	case dns.TypeA:
		return e.a
	case dns.TypeAAAA:
		return e.aaaa
	case dns.TypeSRV:
		return e.srv
	case dns.TypePTR:
		return e.ptr
	case dns.TypeSOA:
		return e.soa
	case dns.TypeCNAME:
		return e.cnameT
	case dns.TypeANY: // RFC 8482: one RRset is enough
		for _, t := range []*template{e.a, e.aaaa, e.srv, e.ptr, e.soa, e.cnameT} {
			if t != nil {
				return t
			}
		}
	}
	return nil
}

// UpdateService adds or replaces the records of svc.
func (s *Server) UpdateService(svc *corev1.Service) {
	key := objKey{svc.Namespace, svc.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[key] = serviceFrom(svc)
	s.republish(key)
}

// DeleteService removes the records of a service.
func (s *Server) DeleteService(namespace, name string) {
	key := objKey{namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.services, key)
	s.republish(key)
}

// UpdateEndpointSlice adds or replaces es, one of the slices of the service
// named by its kubernetes.io/service-name label.
func (s *Server) UpdateEndpointSlice(es *discoveryv1.EndpointSlice) {
	key := objKey{es.Namespace, es.Name}
	next, ok := sliceFrom(es)
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.slices[key]
	s.unlinkSlice(key)
	if ok {
		s.slices[key] = next
		if s.svcSlices[next.service] == nil {
			s.svcSlices[next.service] = map[objKey]struct{}{}
		}
		s.svcSlices[next.service][key] = struct{}{}
		s.republish(next.service)
	}
	if prev != nil && (!ok || prev.service != next.service) {
		s.republish(prev.service)
	}
}

// DeleteEndpointSlice removes a slice.
func (s *Server) DeleteEndpointSlice(namespace, name string) {
	key := objKey{namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.unlinkSlice(key); prev != nil {
		s.republish(prev.service)
	}
}

func (s *Server) unlinkSlice(key objKey) *endpointSlice {
	prev := s.slices[key]
	if prev == nil {
		return nil
	}
	delete(s.slices, key)
	if set := s.svcSlices[prev.service]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(s.svcSlices, prev.service)
		}
	}
	return prev
}

// republish recomputes the records of service key and swaps the names
// whose answers changed into the table queries read. Callers hold s.mu.
func (s *Server) republish(key objKey) {
	var next map[string]*rrset
	if svc := s.services[key]; svc != nil {
		var sl []*endpointSlice
		for k := range s.svcSlices[key] {
			sl = append(sl, s.slices[k])
		}
		next = s.build(key, svc, sl)
	}
	prev := s.published[key]
	if next == nil {
		delete(s.published, key)
	} else {
		s.published[key] = next
	}
	changed := map[string]bool{}
	for name := range prev {
		if _, ok := next[name]; !ok {
			s.disown(name, key, changed)
		}
	}
	for name, rs := range next {
		if old, ok := prev[name]; !ok {
			s.own(name, key, changed)
		} else if !old.equal(rs) {
			changed[name] = true
		}
	}
	if len(changed) == 0 {
		return
	}
	entries := make(map[string]*entry, len(changed))
	for name := range changed {
		entries[name] = s.entryFor(name)
	}
	s.rw.Lock()
	for name, e := range entries {
		if e == nil {
			delete(s.names, name)
		} else {
			s.names[name] = e
		}
	}
	s.rw.Unlock()
}

func (s *Server) own(name string, key objKey, changed map[string]bool) {
	changed[name] = true
	s.owners[name] = append(s.owners[name], key)
	if len(s.owners[name]) > 1 {
		return
	}
	s.ancestors(name, func(a string) {
		if s.below[a]++; s.below[a] == 1 {
			changed[a] = true
		}
	})
}

func (s *Server) disown(name string, key objKey, changed map[string]bool) {
	changed[name] = true
	s.owners[name] = slices.DeleteFunc(s.owners[name], func(k objKey) bool { return k == key })
	if len(s.owners[name]) > 0 {
		return
	}
	delete(s.owners, name)
	s.ancestors(name, func(a string) {
		if s.below[a]--; s.below[a] == 0 {
			delete(s.below, a)
			changed[a] = true
		}
	})
}

// ancestors calls f with the names between name and the svc zone, which
// exist because name does (empty non-terminals: NODATA, not NXDOMAIN).
func (s *Server) ancestors(name string, f func(string)) {
	if !strings.HasSuffix(name, "."+s.svcZone) {
		return
	}
	for {
		name = name[strings.IndexByte(name, '.')+1:]
		if name == s.svcZone {
			return
		}
		f(name)
	}
}

// entryFor computes the entry of name from the services that own it.
func (s *Server) entryFor(name string) *entry {
	owners := s.owners[name]
	if len(owners) == 0 {
		if s.below[name] > 0 {
			return entENT
		}
		return nil
	}
	rs := s.published[owners[0]][name]
	if len(owners) > 1 { // two services with one address: both PTRs
		merged := &rrset{}
		for _, o := range owners {
			p := s.published[o][name]
			merged.a, merged.aaaa = append(merged.a, p.a...), append(merged.aaaa, p.aaaa...)
			merged.srv, merged.extra = append(merged.srv, p.srv...), append(merged.extra, p.extra...)
			merged.ptr = append(merged.ptr, p.ptr...)
			if merged.cname == nil {
				merged.cname = p.cname
			}
		}
		merged.a, merged.aaaa, merged.ptr = sortRRs(merged.a), sortRRs(merged.aaaa), sortRRs(merged.ptr)
		merged.extra = sortRRs(merged.extra)
		rs = merged
	}
	e, err := s.newEntry(name, rs)
	if err != nil {
		s.log.Error("cluster DNS: answers left out", "name", name, "err", err)
	}
	return e
}

func (s *Server) newEntry(name string, rs *rrset) (*entry, error) {
	e := &entry{cname: rs.cname}
	var errs []error
	mk := func(qtype uint16, answer, extra []dns.RR) *template {
		if len(answer) == 0 {
			return nil
		}
		m := s.newMsg(name, qtype, dns.RcodeSuccess)
		m.Answer, m.Extra = answer, extra
		t, err := newTemplate(m, false)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	if e.a = mk(dns.TypeA, rs.a, nil); e.a != nil {
		e.a.rotate(len(rs.a))
	}
	if e.aaaa = mk(dns.TypeAAAA, rs.aaaa, nil); e.aaaa != nil {
		e.aaaa.rotate(len(rs.aaaa))
	}
	e.srv = mk(dns.TypeSRV, rs.srv, rs.extra)
	e.ptr = mk(dns.TypePTR, rs.ptr, nil)
	if rs.cname != nil {
		e.cnameT = mk(dns.TypeCNAME, []dns.RR{rs.cname}, nil)
	}
	if len(errs) > 0 {
		return e, fmt.Errorf("name %s: %v", name, errs)
	}
	return e, nil
}

func (rs *rrset) equal(o *rrset) bool {
	eq := func(x, y []dns.RR) bool { return slices.EqualFunc(x, y, dns.IsDuplicate) }
	return eq(rs.a, o.a) && eq(rs.aaaa, o.aaaa) && eq(rs.srv, o.srv) && eq(rs.extra, o.extra) && eq(rs.ptr, o.ptr) &&
		(rs.cname == nil) == (o.cname == nil) && (rs.cname == nil || rs.cname.Target == o.cname.Target)
}

// newMsg starts an authoritative answer to name and qtype.
func (s *Server) newMsg(name string, qtype uint16, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.Authoritative, m.Rcode = true, true, rcode
	m.RecursionAvailable = len(s.upstreams) > 0
	return m
}

// initZones makes the answers that do not depend on services: the apex
// SOA and the negative answers, which carry the zone's SOA.
func (s *Server) initZones() error {
	s.soa = &dns.SOA{
		Hdr: s.hdr(s.domain, dns.TypeSOA), Ns: "ns.dns." + s.domain, Mbox: "hostmaster." + s.domain,
		Serial: uint32(time.Now().Unix()), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.ttl,
	}
	negative := func(zone string, rcode int) (*template, error) {
		soa := *s.soa
		soa.Hdr.Name = zone
		m := s.newMsg(zone, dns.TypeA, rcode)
		m.Ns = []dns.RR{&soa}
		return newTemplate(m, true)
	}
	var err error
	if s.nxdomain, err = negative(s.domain, dns.RcodeNameError); err != nil {
		return err
	}
	if s.nodata, err = negative(s.domain, dns.RcodeSuccess); err != nil {
		return err
	}
	if s.nodataV4, err = negative("in-addr.arpa.", dns.RcodeSuccess); err != nil {
		return err
	}
	if s.nodataV6, err = negative("ip6.arpa.", dns.RcodeSuccess); err != nil {
		return err
	}
	m := s.newMsg(s.domain, dns.TypeSOA, dns.RcodeSuccess)
	m.Answer = []dns.RR{s.soa}
	apex, err := newTemplate(m, false)
	if err != nil {
		return err
	}
	s.names[s.domain] = &entry{soa: apex}
	s.names[s.svcZone] = entENT
	s.names[s.podZone] = entENT
	return nil
}
