package clusterdns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds any message the dns package can unpack to ServeDNS:
// it must not panic, and what it writes must be one well-formed answer
// with the query's ID that fits the client's size.
func FuzzServeDNS(f *testing.F) {
	seed := func(name string, qtype uint16, f2 func(*dns.Msg)) []byte {
		r := new(dns.Msg)
		r.SetQuestion(name, qtype)
		if f2 != nil {
			f2(r)
		}
		b, err := r.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	edns := func(r *dns.Msg) { r.SetEdns0(4096, true) }
	for _, b := range [][]byte{
		seed("web.default.svc.cluster.local.", dns.TypeA, nil),
		seed("WEB.default.svc.cluster.local.", dns.TypeAAAA, edns),
		seed("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, edns),
		seed("db.default.svc.cluster.local.", dns.TypeA, nil),
		seed("db-0.db.default.svc.cluster.local.", dns.TypeANY, nil),
		seed("alias.default.svc.cluster.local.", dns.TypeA, nil),
		seed("ext.default.svc.cluster.local.", dns.TypeCNAME, nil),
		seed("10.0.96.10.in-addr.arpa.", dns.TypePTR, nil),
		seed("10-244-1-5.default.pod.cluster.local.", dns.TypeA, nil),
		seed("fd00--7.default.pod.cluster.local.", dns.TypeAAAA, edns),
		seed("nope.default.svc.cluster.local.", dns.TypeA, edns),
		seed("cluster.local.", dns.TypeSOA, nil),
		seed("www.example.", dns.TypeA, edns),
		seed("www.example.", dns.TypeA, func(r *dns.Msg) { r.Opcode = dns.OpcodeNotify }),
		seed("www.example.", dns.TypeA, func(r *dns.Msg) { r.Question[0].Qclass = dns.ClassCHAOS }),
		seed("www.example.", dns.TypeA, func(r *dns.Msg) { r.Question = append(r.Question, r.Question[0]) }),
		seed("www.example.", dns.TypeA, func(r *dns.Msg) { r.SetEdns0(512, false); r.IsEdns0().SetVersion(3) }),
		{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(b, false)
		f.Add(b, true)
	}

	// A quick upstream on loopback, so the forwarding and cached paths are
	// fuzzed too.
	up := startUpstream(f, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if rr, err := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1"); err == nil && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	s := newTestServer(f, Config{Upstreams: []string{up.addr}})
	loadFixture(s)
	s.UpdateService(svc("default", "big", headless))
	var eps []ep
	for i := range 100 {
		eps = append(eps, ep{addr: "10.1.0." + strconv.Itoa(i+1)})
	}
	s.UpdateEndpointSlice(slice("default", "big-a", "big", eps))

	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			return
		}
		w := &fakeWriter{tcp: tcp}
		s.ServeDNS(w, r)
		if r.Response {
			if len(w.raw) != 0 {
				t.Fatalf("answered a response")
			}
			return
		}
		if len(w.errs) > 0 {
			t.Fatalf("query %v: %v", r, w.errs)
		}
		if len(w.msgs) != 1 {
			t.Fatalf("query %v: %d answers", r, len(w.msgs))
		}
		m := w.msgs[0]
		if m.Id != r.Id || !m.Response {
			t.Fatalf("answer %v to query %v", m, r)
		}
		limit := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		if !tcp && len(w.raw[0]) > limit {
			t.Fatalf("UDP answer of %d bytes, limit %d", len(w.raw[0]), limit)
		}
		// The packed answer says what the dns.Msg one says.
		s.slowOnly = true
		ws := &fakeWriter{tcp: tcp}
		s.ServeDNS(ws, r)
		s.slowOnly = false
		if len(ws.msgs) != 1 {
			t.Fatalf("query %v: %d answers from dns.Msg", r, len(ws.msgs))
		}
		if fast, slow := canonical(m), canonical(ws.msgs[0]); fast != slow {
			t.Fatalf("query %v:\npacked answer:\n%s\ndns.Msg answer:\n%s", r, fast, slow)
		}
	})
}

// canonical prints what an answer means: its header and its records with
// names folded, TTLs left out (an answer may age between two queries) and
// the records rotated into order.
func canonical(m *dns.Msg) string {
	h := m.MsgHdr
	h.Id = 0
	var b strings.Builder
	fmt.Fprintf(&b, "%+v %v\n", h, m.Question)
	for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var rrs []string
		for _, rr := range sec {
			if rr.Header().Rrtype != dns.TypeOPT { // its TTL holds flags
				rr = dns.Copy(rr)
				rr.Header().Ttl = 0
			}
			rrs = append(rrs, strings.ToLower(rr.String()))
		}
		slices.Sort(rrs)
		fmt.Fprintf(&b, "section %d: %s\n", i, strings.Join(rrs, "\n"))
	}
	return b.String()
}
