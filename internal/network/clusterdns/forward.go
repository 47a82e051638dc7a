package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// cacheKey is what an upstream answer depends on.
type cacheKey struct {
	name   string // lowercase
	qtype  uint16
	do, cd bool
}

func (k cacheKey) String() string {
	return k.name + "/" + strconv.Itoa(int(k.qtype)) + "/" + strconv.FormatBool(k.do) + "/" + strconv.FormatBool(k.cd)
}

// forward answers q, a name outside this server's zones, from the cache
// or from the upstreams.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg, q *query) {
	if len(s.upstreams) == 0 {
		s.reject(w, r, q, dns.RcodeRefused)
		return
	}
	key := cacheKey{name: q.lname, qtype: q.qtype, do: q.do, cd: q.flags3 != 0}
	t := s.cache.get(key, q.now)
	if t == nil {
		if d, ok := w.(deferrer); ok {
			d.deferQuery()
			return
		}
		var err error
		if t, err = s.resolve(key, q.now); err != nil {
			s.log.Debug("cluster DNS: forwarding", "name", q.name, "err", err)
			s.reject(w, r, q, dns.RcodeServerFailure)
			return
		}
	}
	s.write(w, r, q, t)
}

// resolve returns the upstreams' answer for key: cached, or asked for
// once however many queries want it at the same time.
func (s *Server) resolve(key cacheKey, now time.Time) (*template, error) {
	if t := s.cache.get(key, now); t != nil {
		return t, nil
	}
	v, err, _ := s.flight.Do(key.String(), func() (any, error) {
		if t := s.cache.get(key, time.Now()); t != nil {
			return t, nil // answered while this query waited for the lock
		}
		resp, err := s.exchange(key)
		if err != nil {
			return nil, err
		}
		return s.remember(key, resp)
	})
	if err != nil {
		return nil, err
	}
	return v.(*template), nil
}

// exchange asks the upstreams in turn, starting from the one that answered
// last, within forwardTimeout in all.
func (s *Server) exchange(key cacheKey) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(key.name, key.qtype)
	m.CheckingDisabled = key.cd
	m.SetEdns0(maxUDPSize, key.do)
	deadline := time.Now().Add(forwardTimeout)
	n := len(s.upstreams)
	first := int(s.preferred.Load())
	var errs []error
	for i := range n {
		idx := (first + i) % n
		addr := s.upstreams[idx]
		// What is left of the time is shared by the upstreams not yet tried.
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline)/time.Duration(n-i))
		resp, err := exchangeWith(ctx, m, addr)
		cancel()
		if err == nil && (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError) {
			s.preferred.Store(int32(idx))
			return resp, nil
		}
		if err == nil {
			err = fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", addr, err))
	}
	return nil, fmt.Errorf("forwarding %s %s: %w", key.name, dns.TypeToString[key.qtype], errors.Join(errs...))
}

// exchangeWith asks one upstream over UDP, and over TCP if the answer was
// truncated.
func exchangeWith(ctx context.Context, m *dns.Msg, addr string) (*dns.Msg, error) {
	c := dns.Client{Net: "udp"}
	resp, _, err := c.ExchangeContext(ctx, m, addr)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, addr)
	}
	if err != nil {
		return nil, err
	}
	q := m.Question[0]
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Name) ||
		resp.Question[0].Qtype != q.Qtype || resp.Question[0].Qclass != q.Qclass {
		return nil, errors.New("answer to another question")
	}
	return resp, nil
}

// remember makes a template of an upstream answer and caches it for its TTL.
func (s *Server) remember(key cacheKey, resp *dns.Msg) (*template, error) {
	m := new(dns.Msg)
	m.SetQuestion(key.name, key.qtype)
	m.Response, m.Rcode = true, resp.Rcode
	m.RecursionAvailable, m.AuthenticatedData = true, resp.AuthenticatedData
	m.Answer, m.Ns = resp.Answer, resp.Ns
	for _, rr := range resp.Extra {
		// The OPT is per hop; each client gets its own.
		if t := rr.Header().Rrtype; t != dns.TypeOPT && t != dns.TypeTSIG {
			m.Extra = append(m.Extra, rr)
		}
	}
	ttl := cacheTTL(m)
	if ttl > 0 {
		// Nobody downstream should keep the answer longer than this cache.
		for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range rrs {
				rr.Header().Ttl = min(rr.Header().Ttl, uint32(ttl/time.Second))
			}
		}
	}
	t, err := newTemplate(m, false)
	if err != nil {
		return nil, fmt.Errorf("forwarded answer: %w", err)
	}
	if err := t.findTTLs(); err != nil {
		return nil, fmt.Errorf("forwarded answer of %s: %w", key.name, err)
	}
	t.stored = time.Now()
	if ttl > 0 {
		t.expires = t.stored.Add(ttl)
		s.cache.put(key, t)
	}
	return t, nil
}

// cacheTTL is how long an answer may be reused: its smallest TTL, or for
// a negative answer its SOA's (RFC 2308), capped.
func cacheTTL(m *dns.Msg) time.Duration {
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		ttl := uint32(math.MaxUint32)
		for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range rrs {
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
		return min(time.Duration(ttl)*time.Second, maxPositiveTTL)
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return 0
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxNegativeTTL)
		}
	}
	return 0
}
