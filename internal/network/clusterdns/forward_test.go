package clusterdns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a resolver on loopback that counts the queries it gets.
type upstream struct {
	addr string
	mu   sync.Mutex
	seen map[string]int // "name type net"
}

func (u *upstream) count(name string, qtype uint16, network string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[name+" "+dns.TypeToString[qtype]+" "+network]
}

// startUpstream serves h on UDP and TCP on one loopback port until the
// test ends.
func startUpstream(t testing.TB, h func(w dns.ResponseWriter, r *dns.Msg)) *upstream {
	t.Helper()
	u := &upstream{seen: map[string]int{}}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		network := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			network = "tcp"
		}
		u.mu.Lock()
		u.seen[lowerASCII(r.Question[0].Name)+" "+dns.TypeToString[r.Question[0].Qtype]+" "+network]++
		u.mu.Unlock()
		h(w, r)
	})
	pc, ln := listenLoopback(t)
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

// standardUpstream answers the names the forwarding tests use.
func standardUpstream(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	a := func(name, ip string, ttl uint32) dns.RR {
		rr, _ := dns.NewRR(fmt.Sprintf("%s %d IN A %s", name, ttl, ip))
		return rr
	}
	soa, _ := dns.NewRR("example. 3600 IN SOA ns.example. hostmaster.example. 1 7200 1800 86400 3600")
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	switch name := lowerASCII(q.Name); {
	case q.Qtype == dns.TypePTR && name == "4.3.2.1.in-addr.arpa.":
		rr, _ := dns.NewRR(name + " 300 IN PTR one.example.")
		m.Answer = []dns.RR{rr}
	case strings.HasPrefix(name, "slow") && q.Qtype == dns.TypeA:
		time.Sleep(300 * time.Millisecond)
		m.Answer = []dns.RR{a(q.Name, "192.0.2.3", 300)}
	case q.Qtype != dns.TypeA:
		m.Ns = []dns.RR{soa}
	case name == "www.example." || name == "other.example.":
		m.Answer = []dns.RR{a(q.Name, "192.0.2.1", 300)}
	case name == "short.example.":
		m.Answer = []dns.RR{a(q.Name, "192.0.2.2", 1)}
	case name == "big.example.":
		if !tcp {
			m.Truncated = true
			break
		}
		for i := range 100 {
			m.Answer = append(m.Answer, a(q.Name, fmt.Sprintf("192.0.2.%d", i+1), 300))
		}
	case name == "wrong.example.":
		m.Question[0].Name = "right.example."
		m.Answer = []dns.RR{a("right.example.", "192.0.2.4", 300)}
	case name == "fail.example.":
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	w.WriteMsg(m)
}

// deadUpstream is a loopback address that never answers; count tells how
// many queries it got.
func deadUpstream(t *testing.T) (addr string, count func() int) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return pc.LocalAddr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func dead(t *testing.T) string {
	addr, _ := deadUpstream(t)
	return addr
}

func TestForwardAndCache(t *testing.T) {
	up := startUpstream(t, standardUpstream)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	loadFixture(s)

	m := ask(t, s, "www.example.", dns.TypeA)
	if got := resultOf(m); got.Rcode != "NOERROR" || got.AA || !m.RecursionAvailable ||
		len(got.Answer) != 1 || got.Answer[0] != "www.example. 30 IN A 192.0.2.1" {
		t.Errorf("answer %+v, RA %v; want www.example. 30 IN A 192.0.2.1 (TTL capped), not authoritative", got, m.RecursionAvailable)
	}
	// Cached: another spelling, another ID, TCP or EDNS all hit the cache.
	ask(t, s, "WWW.Example.", dns.TypeA)
	r := new(dns.Msg)
	r.SetQuestion("www.example.", dns.TypeA)
	r.SetEdns0(1232, false)
	exchange(t, s, r, true)
	if n := up.count("www.example.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times, want 1", n)
	}

	// negative answers: cached for the SOA minimum, capped at 5 s
	m = ask(t, s, "missing.example.", dns.TypeA)
	if got := resultOf(m); got.Rcode != "NXDOMAIN" || len(got.Ns) != 1 || m.Ns[0].Header().Ttl != 5 {
		t.Errorf("answer %+v, want NXDOMAIN with the SOA's TTL 5", got)
	}
	ask(t, s, "missing.example.", dns.TypeA)
	if n := up.count("missing.example.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for a cached NXDOMAIN, want 1", n)
	}
	if tp := s.cache.get(cacheKey{name: "missing.example.", qtype: dns.TypeA}, time.Now()); tp == nil || tp.expires.Sub(tp.stored) != maxNegativeTTL {
		t.Errorf("NXDOMAIN cached as %+v, want for %v", tp, maxNegativeTTL)
	}
	if got := resultOf(ask(t, s, "www.example.", dns.TypeAAAA)); got.Rcode != "NOERROR" || len(got.Answer) != 0 || len(got.Ns) != 1 {
		t.Errorf("NODATA answer %+v", got)
	}

	// PTR of an address that is not the cluster's
	if got := resultOf(ask(t, s, "4.3.2.1.in-addr.arpa.", dns.TypePTR)); len(got.Answer) != 1 {
		t.Errorf("forwarded PTR: %+v", got)
	}

	// an ExternalName service's target is resolved upstream
	s.UpdateService(svc("default", "ext", externalName("www.example")))
	want := []string{"ext.default.svc.cluster.local. 5 IN CNAME www.example.", "www.example. 30 IN A 192.0.2.1"}
	if got := resultOf(ask(t, s, "ext.default.svc.cluster.local.", dns.TypeA)); fmt.Sprint(got.Answer) != fmt.Sprint(want) || !got.AA {
		t.Errorf("ExternalName answer %+v, want %v", got, want)
	}
}

func TestCacheExpiry(t *testing.T) {
	up := startUpstream(t, standardUpstream)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	ask(t, s, "short.example.", dns.TypeA)
	ask(t, s, "www.example.", dns.TypeA)
	time.Sleep(1100 * time.Millisecond)
	ask(t, s, "short.example.", dns.TypeA)
	if n := up.count("short.example.", dns.TypeA, "udp"); n != 2 {
		t.Errorf("upstream asked %d times for a name with TTL 1 over 1.1 s, want 2", n)
	}
	// the cached answer ages, on the fast path and on the slow one
	for _, tcp := range []bool{false, true} {
		r := new(dns.Msg)
		r.SetQuestion("www.example.", dns.TypeA)
		if ttl := exchange(t, s, r, tcp).Answer[0].Header().Ttl; ttl != 29 {
			t.Errorf("tcp=%v: TTL %d after a second, want 29", tcp, ttl)
		}
	}
	s.slowOnly = true
	if ttl := ask(t, s, "www.example.", dns.TypeA).Answer[0].Header().Ttl; ttl != 29 {
		t.Errorf("slow path: TTL %d after a second, want 29", ttl)
	}
}

func TestSingleflight(t *testing.T) {
	up := startUpstream(t, standardUpstream)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := new(dns.Msg)
			r.SetQuestion("slow.example.", dns.TypeA)
			r.Id = uint16(i)
			if m := exchange(t, s, r, false); len(m.Answer) != 1 {
				t.Errorf("answer %v", m.Answer)
			}
		})
	}
	wg.Wait()
	if n := up.count("slow.example.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream asked %d times for 50 concurrent queries, want 1", n)
	}
}

func TestUpstreamFailures(t *testing.T) {
	good := startUpstream(t, standardUpstream)
	tests := []struct {
		name      string
		upstreams []string
		qname     string
		rcode     int
		answers   int
	}{
		{"first upstream dead", []string{dead(t), good.addr}, "www.example.", dns.RcodeSuccess, 1},
		{"all dead", []string{dead(t), dead(t)}, "www.example.", dns.RcodeServerFailure, 0},
		{"SERVFAIL", []string{good.addr}, "fail.example.", dns.RcodeServerFailure, 0},
		{"answer to another question", []string{good.addr}, "wrong.example.", dns.RcodeServerFailure, 0},
		{"truncated over UDP", []string{good.addr}, "big.example.", dns.RcodeSuccess, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Config{Upstreams: tt.upstreams})
			start := time.Now()
			r := new(dns.Msg)
			r.SetQuestion(tt.qname, dns.TypeA)
			m := exchange(t, s, r, true)
			if elapsed := time.Since(start); elapsed > forwardTimeout+time.Second {
				t.Errorf("answered in %v, want within %v", elapsed, forwardTimeout)
			}
			if m.Rcode != tt.rcode || len(m.Answer) != tt.answers {
				t.Errorf("rcode %s with %d answers, want %s with %d", dns.RcodeToString[m.Rcode], len(m.Answer),
					dns.RcodeToString[tt.rcode], tt.answers)
			}
		})
	}
	if n := good.count("big.example.", dns.TypeA, "tcp"); n != 1 {
		t.Errorf("truncated answer retried over TCP %d times, want 1", n)
	}
	t.Run("the upstream that answered is asked first", func(t *testing.T) {
		deadAddr, deadCount := deadUpstream(t)
		s := newTestServer(t, Config{Upstreams: []string{deadAddr, good.addr}})
		ask(t, s, "www.example.", dns.TypeA)
		ask(t, s, "other.example.", dns.TypeA)
		if n := deadCount(); n != 1 {
			t.Errorf("dead upstream asked %d times, want once", n)
		}
	})
}

func TestCacheSize(t *testing.T) {
	up := startUpstream(t, standardUpstream)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}, CacheSize: 2})
	for _, n := range []string{"www.example.", "other.example.", "short.example.", "missing.example."} {
		ask(t, s, n, dns.TypeA)
	}
	if n := s.cache.len(); n != 2 {
		t.Errorf("cache holds %d answers, want 2", n)
	}
}

func TestServeAndFlood(t *testing.T) {
	gated, gate := make(chan struct{}, 1), make(chan struct{})
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name == "gate.example." {
			gated <- struct{}{}
			<-gate
		}
		standardUpstream(w, r)
	})
	for _, mode := range []struct {
		name      string
		noBatches bool
	}{{"batches", false}, {"dns package's UDP server", true}} {
		t.Run(mode.name, func(t *testing.T) {
			s := newTestServer(t, Config{Upstreams: []string{up.addr}})
			s.noBatches = mode.noBatches
			loadFixture(s)
			addr, stop := serveLoopback(t, s)
			defer stop()

			for _, network := range []string{"udp", "tcp"} {
				c := dns.Client{Net: network, Timeout: 2 * time.Second}
				for _, name := range []string{"web.default.svc.cluster.local.", "www.example.", "slow.example."} {
					r := new(dns.Msg)
					r.SetQuestion(name, dns.TypeA)
					m, _, err := c.Exchange(r, addr)
					if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
						t.Errorf("%s %s: %v, %v", network, name, m, err)
					}
				}
			}
			// A query waiting for an upstream holds up no other: the gate
			// holds the upstream's answer until the other query is answered.
			waiting := make(chan error, 1)
			go func() {
				r := new(dns.Msg)
				r.SetQuestion("gate.example.", dns.TypeA)
				_, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(r, addr)
				waiting <- err
			}()
			<-gated // the upstream has the query
			r := new(dns.Msg)
			r.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
			_, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(r, addr)
			gate <- struct{}{}
			if err != nil {
				t.Errorf("cluster query while another waits for an upstream: %v", err)
			}
			if err := <-waiting; err != nil {
				t.Errorf("query through the gated upstream: %v", err)
			}

			// 10,000 queries over UDP from 50 clients, 20 in flight each.
			const clients, perClient, window = 50, 200, 20
			names := []string{"web.default.svc.cluster.local.", "db.default.svc.cluster.local.", "www.example.", "nope.default.svc.cluster.local."}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for c := range clients {
				wg.Go(func() {
					if err := flood(addr, c, perClient, window, names); err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(failures) > 0 {
				t.Errorf("%d of %d clients failed: %s", len(failures), clients, strings.Join(failures[:min(5, len(failures))], "; "))
			}
		})
	}
}

// flood sends n queries on one UDP socket with up to window in flight and
// checks every answer.
func flood(addr string, client, n, window int, names []string) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	pending := map[uint16]string{}
	sent := 0
	for sent < n || len(pending) > 0 {
		for sent < n && len(pending) < window {
			r := new(dns.Msg)
			r.SetQuestion(names[(client+sent)%len(names)], dns.TypeA)
			r.Id = uint16(sent)
			if err := co.WriteMsg(r); err != nil {
				return fmt.Errorf("client %d: %w", client, err)
			}
			pending[r.Id] = r.Question[0].Name
			sent++
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, err := co.ReadMsg()
		if err != nil {
			return fmt.Errorf("client %d: %d queries unanswered: %w", client, len(pending), err)
		}
		name, ok := pending[m.Id]
		if !ok || len(m.Question) != 1 || m.Question[0].Name != name {
			return fmt.Errorf("client %d: answer %d to %v matches no query", client, m.Id, m.Question)
		}
		if m.Rcode == dns.RcodeServerFailure || m.Truncated {
			return fmt.Errorf("client %d: %s: rcode %s, TC %v", client, name, dns.RcodeToString[m.Rcode], m.Truncated)
		}
		delete(pending, m.Id)
	}
	return nil
}

// listenLoopback binds one loopback port for both UDP and TCP.
func listenLoopback(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if ln, err := net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for UDP and TCP")
	return nil, nil
}

// serveLoopback runs s on UDP and TCP on a loopback port.
func serveLoopback(t testing.TB, s *Server) (addr string, stop func()) {
	t.Helper()
	pc, ln := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	// Serve is ready once a query is answered.
	c := dns.Client{Timeout: 200 * time.Millisecond}
	for i := 0; ; i++ {
		r := new(dns.Msg)
		r.SetQuestion(s.domain, dns.TypeSOA)
		if _, _, err := c.Exchange(r, pc.LocalAddr().String()); err == nil {
			break
		} else if i == 20 {
			t.Fatalf("server not answering: %v", err)
		}
	}
	addr = pc.LocalAddr().String()
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		// Serve closed its sockets: the port is free again.
		if pc, err := net.ListenPacket("udp", addr); err != nil {
			t.Errorf("UDP port still taken after Serve returned: %v", err)
		} else {
			pc.Close()
		}
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Errorf("TCP port still taken after Serve returned: %v", err)
		} else {
			ln.Close()
		}
	}
}
