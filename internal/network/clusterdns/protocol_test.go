package clusterdns

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func TestMalformedQueries(t *testing.T) {
	s := newTestServer(t, Config{})
	loadFixture(s)
	query := func(f func(*dns.Msg)) *dns.Msg {
		r := new(dns.Msg)
		r.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		f(r)
		return r
	}
	tests := []struct {
		name  string
		req   *dns.Msg
		rcode int
	}{
		{"no question", query(func(r *dns.Msg) { r.Question = nil }), dns.RcodeFormatError},
		{"two questions", query(func(r *dns.Msg) { r.Question = append(r.Question, r.Question[0]) }), dns.RcodeFormatError},
		{"question of type OPT", query(func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeOPT }), dns.RcodeFormatError},
		{"notify", query(func(r *dns.Msg) { r.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented},
		{"update", query(func(r *dns.Msg) { r.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented},
		{"class CH", query(func(r *dns.Msg) { r.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeNotImplemented},
		{"AXFR", query(func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeAXFR }), dns.RcodeRefused},
		{"EDNS version 1", query(func(r *dns.Msg) { r.SetEdns0(1232, false); r.IsEdns0().SetVersion(1) }), dns.RcodeBadVers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{}
			s.ServeDNS(w, tt.req)
			if len(w.errs) > 0 || len(w.msgs) != 1 {
				t.Fatalf("answers %v, errors %v; want one answer", w.msgs, w.errs)
			}
			m := w.msgs[0]
			if m.Rcode != tt.rcode || m.Id != tt.req.Id || len(m.Answer) != 0 {
				t.Errorf("rcode %s, id %d, answer %v; want %s, id %d, no answer",
					dns.RcodeToString[m.Rcode], m.Id, m.Answer, dns.RcodeToString[tt.rcode], tt.req.Id)
			}
			if (tt.req.IsEdns0() != nil) != (m.IsEdns0() != nil) {
				t.Errorf("OPT in answer: %v, in query: %v", m.IsEdns0() != nil, tt.req.IsEdns0() != nil)
			}
		})
	}
	t.Run("a response is not answered", func(t *testing.T) {
		w := &fakeWriter{}
		s.ServeDNS(w, query(func(r *dns.Msg) { r.Response = true }))
		if len(w.raw) != 0 {
			t.Errorf("answered a response: %v", w.msgs)
		}
	})
}

func TestHeaderAndEDNS(t *testing.T) {
	s := newTestServer(t, Config{})
	loadFixture(s)
	for _, name := range []string{"web.default.svc.cluster.local.", "nope.default.svc.cluster.local.", "10-1-2-3.x.pod.cluster.local."} {
		for _, edns := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/edns=%v", name, edns), func(t *testing.T) {
				r := new(dns.Msg)
				r.SetQuestion(name, dns.TypeA)
				r.Id = 0xbeef
				r.CheckingDisabled = true
				if edns {
					r.SetEdns0(4096, true)
				}
				m := exchange(t, s, r, false)
				if !m.Response || !m.RecursionDesired || !m.CheckingDisabled || !m.Authoritative || m.RecursionAvailable {
					t.Errorf("flags: %s", m.MsgHdr.String())
				}
				opt := m.IsEdns0()
				if (opt != nil) != edns {
					t.Fatalf("OPT in answer: %v, want %v", opt != nil, edns)
				}
				if edns && (!opt.Do() || opt.UDPSize() != maxUDPSize || opt.Version() != 0) {
					t.Errorf("OPT %v: want DO, size %d, version 0", opt, maxUDPSize)
				}
			})
		}
	}
}

func TestTruncation(t *testing.T) {
	s := newTestServer(t, Config{})
	s.UpdateService(svc("default", "big", headless))
	var eps []ep
	for i := range 200 {
		eps = append(eps, ep{addr: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)})
	}
	s.UpdateEndpointSlice(slice("default", "big-a", "big", eps))
	tests := []struct {
		name   string
		edns   uint16
		tcp    bool
		tc     bool
		max    int
		answer int
	}{
		{name: "UDP", tc: true, max: 512},
		{name: "UDP with EDNS", edns: 1232, tc: true, max: 1232},
		{name: "UDP with EDNS above the server's size", edns: 65000, tc: true, max: maxUDPSize},
		{name: "TCP", tcp: true, answer: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
			if tt.edns != 0 {
				r.SetEdns0(tt.edns, false)
			}
			w := &fakeWriter{tcp: tt.tcp}
			s.ServeDNS(w, r)
			if len(w.msgs) != 1 {
				t.Fatalf("answers %v, errors %v", w.msgs, w.errs)
			}
			m := w.msgs[0]
			if m.Truncated != tt.tc || (tt.max > 0 && len(w.raw[0]) > tt.max) || (tt.answer > 0 && len(m.Answer) != tt.answer) {
				t.Errorf("TC %v, %d bytes, %d records; want TC %v, at most %d bytes, %d records",
					m.Truncated, len(w.raw[0]), len(m.Answer), tt.tc, tt.max, tt.answer)
			}
			if (tt.edns != 0) != (m.IsEdns0() != nil) {
				t.Errorf("OPT in answer: %v", m.IsEdns0() != nil)
			}
		})
	}
}

// TestRotation checks that the A records of a headless service come in
// every order's first place, as clients mostly use the first.
func TestRotation(t *testing.T) {
	s := newTestServer(t, Config{})
	s.UpdateService(svc("default", "db", headless))
	s.UpdateEndpointSlice(slice("default", "db-a", "db", []ep{{addr: "10.0.0.1"}, {addr: "10.0.0.2"}, {addr: "10.0.0.3"}}))
	first := map[string]int{}
	for range 300 {
		m := ask(t, s, "db.default.svc.cluster.local.", dns.TypeA)
		if len(m.Answer) != 3 {
			t.Fatalf("answer %v, want 3 records", m.Answer)
		}
		first[m.Answer[0].(*dns.A).A.String()]++
	}
	if len(first) != 3 {
		t.Errorf("first records %v, want each of the 3", first)
	}
}
