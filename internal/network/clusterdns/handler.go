package clusterdns

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// query is what answering a request needs to know of it.
type query struct {
	id             uint16
	name           string // as asked
	lname          string // lowercase
	qtype, qclass  uint16
	flags2, flags3 byte // RD, and CD, to copy into the answer's header
	opt, do, ad    bool // EDNS, DNSSEC OK, AD understood
	limit          int  // size the answer must fit
	now            time.Time
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if r == nil || r.Response {
		return // never answer an answer: no loops, no reflection
	}
	q := query{id: r.Id, limit: dns.MinMsgSize, now: time.Now(), ad: r.AuthenticatedData}
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		q.limit = dns.MaxMsgSize
	}
	if r.RecursionDesired {
		q.flags2 = 0x01
	}
	if r.CheckingDisabled {
		q.flags3 = 0x10
	}
	if len(r.Question) > 0 {
		qq := r.Question[0]
		q.name, q.lname, q.qtype, q.qclass = qq.Name, lowerASCII(qq.Name), qq.Qtype, qq.Qclass
	}
	if opt := r.IsEdns0(); opt != nil {
		q.opt, q.do = true, opt.Do()
		q.ad = q.ad || q.do
		if q.limit < dns.MaxMsgSize {
			q.limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		if opt.Version() != 0 {
			s.reject(w, r, &q, dns.RcodeBadVers)
			return
		}
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		s.reject(w, r, &q, dns.RcodeNotImplemented)
		return
	case len(r.Question) != 1 || !strings.HasSuffix(q.name, ".") || q.qtype == dns.TypeOPT:
		s.reject(w, r, &q, dns.RcodeFormatError)
		return
	case q.qclass != dns.ClassINET:
		s.reject(w, r, &q, dns.RcodeNotImplemented)
		return
	case q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR:
		s.reject(w, r, &q, dns.RcodeRefused)
		return
	}

	s.rw.RLock()
	e := s.names[q.lname]
	s.rw.RUnlock()
	switch {
	case e != nil:
		s.answer(w, r, &q, e)
	case s.inDomain(q.lname):
		s.answerPod(w, r, &q)
	default:
		s.forward(w, r, &q)
	}
}

// reject answers with rcode and no records.
func (s *Server) reject(w dns.ResponseWriter, r *dns.Msg, q *query, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = len(s.upstreams) > 0
	if q.opt {
		m.SetEdns0(maxUDPSize, q.do)
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("cluster DNS: writing an error", "rcode", dns.RcodeToString[rcode], "err", err)
	}
}

// write answers q with t, fast when it can.
func (s *Server) write(w dns.ResponseWriter, r *dns.Msg, q *query, t *template) {
	if s.slowOnly || !s.writeFast(w, q, t) {
		s.writeSlow(w, r, q, t)
	}
}

// answer answers q from the entry of its name.
func (s *Server) answer(w dns.ResponseWriter, r *dns.Msg, q *query, e *entry) {
	if e.cname != nil && q.qtype != dns.TypeCNAME {
		s.chase(w, r, q, e)
		return
	}
	t := e.pick(q.qtype)
	if t == nil {
		t = s.nodataFor(q.lname)
	}
	s.write(w, r, q, t)
}

func (s *Server) inDomain(lname string) bool {
	return lname == s.domain || (strings.HasSuffix(lname, s.domain) && lname[len(lname)-len(s.domain)-1] == '.')
}

func (s *Server) nodataFor(lname string) *template {
	switch {
	case strings.HasSuffix(lname, ".in-addr.arpa."):
		return s.nodataV4
	case strings.HasSuffix(lname, ".ip6.arpa."):
		return s.nodataV6
	}
	return s.nodata
}
