package clusterdns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// A template is a packed response waiting for a query: header, the
// client's question and then tail. Serving one copies it, patches the ID,
// the flags the query decides and the question, and appends an OPT record;
// that is what keeps the read path free of allocations.
type template struct {
	head [12]byte // ID zero, RD and CD clear, QDCOUNT 1
	// qlen is the wire length of the question name the tail's compression
	// pointers were made against (the lowercase name: a client's spelling
	// of it differs in case only); 0: the tail points into no question.
	qlen int
	tail []byte
	// A cached upstream answer ages: its TTLs, at offsets in tail, count
	// down from stored.
	ttlOffs []int
	ttls    []uint32
	stored  time.Time
	expires time.Time
	// rotN records of rotUnit bytes from rotOff in tail (A or AAAA
	// records of the question's name) are rotated per query, like
	// CoreDNS's loadbalance plugin does, to spread clients over endpoints.
	rotOff, rotUnit, rotN int
	// msg holds the same answer unpacked, for what the fast path cannot do
	// (truncation, an unusual question). Never modified.
	msg *dns.Msg
}

// newTemplate packs m. With anyName, the tail must not refer to the
// question (m is packed without compression) and the template answers a
// question of any name.
func newTemplate(m *dns.Msg, anyName bool) (*template, error) {
	if len(m.Question) != 1 {
		return nil, errors.New("template needs one question")
	}
	m.Id, m.RecursionDesired, m.CheckingDisabled = 0, false, false
	m.Compress = !anyName
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the answer of %s: %w", m.Question[0].Name, err)
	}
	qend, err := skipName(wire, 12)
	if err != nil || qend+4 > len(wire) {
		return nil, fmt.Errorf("packed answer of %s has no question", m.Question[0].Name)
	}
	t := &template{tail: wire[qend+4:], msg: m}
	copy(t.head[:], wire[:12])
	if !anyName {
		t.qlen = qend - 12
	}
	return t, nil
}

// rotate marks the answer section for rotation when it is n records of
// one size (all owned by the question's name, compressed to a pointer).
func (t *template) rotate(n int) {
	if n < 2 || len(t.msg.Answer) != n {
		return
	}
	off, unit := 0, 0
	for range n {
		end, err := skipRRs(t.tail, off, 1)
		if err != nil || (unit != 0 && end-off != unit) {
			return
		}
		off, unit = end, end-off
	}
	t.rotOff, t.rotUnit, t.rotN = 0, unit, n
}

// offsets of the RRs' TTLs in tail; OPT records are not in templates.
func (t *template) findTTLs() error {
	off := 0
	count := int(binary.BigEndian.Uint16(t.head[6:])) + int(binary.BigEndian.Uint16(t.head[8:])) + int(binary.BigEndian.Uint16(t.head[10:]))
	for range count {
		n, err := skipName(t.tail, off)
		if err != nil || n+10 > len(t.tail) {
			return errors.New("bad record in packed answer")
		}
		t.ttlOffs = append(t.ttlOffs, n+4)
		t.ttls = append(t.ttls, binary.BigEndian.Uint32(t.tail[n+4:]))
		off = n + 10 + int(binary.BigEndian.Uint16(t.tail[n+8:]))
	}
	if off != len(t.tail) {
		return errors.New("trailing bytes in packed answer")
	}
	return nil
}

func skipName(b []byte, off int) (int, error) {
	for off < len(b) {
		c := int(b[off])
		switch {
		case c == 0:
			return off + 1, nil
		case c&0xC0 == 0xC0:
			return off + 2, nil
		case c&0xC0 != 0:
			return 0, errors.New("bad label")
		}
		off += c + 1
	}
	return 0, errors.New("name past the end")
}

func skipRRs(b []byte, off, n int) (int, error) {
	for range n {
		var err error
		if off, err = skipName(b, off); err != nil || off+10 > len(b) {
			return 0, errors.New("bad record")
		}
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	}
	return off, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeFast answers q with t, as packed bytes. It reports false, having
// written nothing, when the answer needs the slow path.
func (s *Server) writeFast(w dns.ResponseWriter, q *query, t *template) bool {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	need := 12 + 256 + 4 + len(t.tail) + 11
	if cap(*bp) < need {
		*bp = make([]byte, 0, need+512)
	}
	b := (*bp)[:12+256]
	copy(b, t.head[:])
	binary.BigEndian.PutUint16(b, q.id)
	b[2] |= q.flags2
	b[3] |= q.flags3
	if !q.ad {
		b[3] &^= 0x20 // AD only for a client that understands it (RFC 6840 5.8)
	}
	off, err := dns.PackDomainName(q.name, b, 12, nil, false)
	if err != nil || (t.qlen != 0 && off-12 != t.qlen) {
		return false
	}
	b = binary.BigEndian.AppendUint16(b[:off], q.qtype)
	b = binary.BigEndian.AppendUint16(b, q.qclass)
	base := len(b)
	if t.rotN > 1 {
		k := rand.IntN(t.rotN) * t.rotUnit
		start, end := t.rotOff, t.rotOff+t.rotN*t.rotUnit
		b = append(b, t.tail[:start]...)
		b = append(b, t.tail[start+k:end]...)
		b = append(b, t.tail[start:start+k]...)
		b = append(b, t.tail[end:]...)
	} else {
		b = append(b, t.tail...)
	}
	if t.ttlOffs != nil {
		age := ageOf(t, q.now)
		for i, o := range t.ttlOffs {
			binary.BigEndian.PutUint32(b[base+o:], subTTL(t.ttls[i], age))
		}
	}
	if q.opt {
		var flags byte
		if q.do {
			flags = 0x80
		}
		b = append(b, 0, 0, byte(dns.TypeOPT), maxUDPSize>>8, maxUDPSize&0xff, 0, 0, flags, 0, 0, 0)
		binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	}
	if len(b) > q.limit {
		return false
	}
	*bp = b
	if _, err := w.Write(b); err != nil {
		s.log.Debug("cluster DNS: writing an answer", "name", q.name, "err", err)
	}
	return true
}

func ageOf(t *template, now time.Time) uint32 {
	if d := now.Sub(t.stored); d > 0 {
		return uint32(d / time.Second)
	}
	return 0
}

func subTTL(ttl, age uint32) uint32 {
	if ttl > age {
		return ttl - age
	}
	return 0
}

// writeSlow answers q with t through a dns.Msg: truncated to the client's
// size, or for a question the fast path cannot echo.
func (s *Server) writeSlow(w dns.ResponseWriter, r *dns.Msg, q *query, t *template) {
	m := t.msg
	var age uint32
	if t.ttlOffs != nil {
		age = ageOf(t, q.now)
	}
	s.reply(w, r, q, m.Rcode, m.Authoritative, aged(m.Answer, age), aged(m.Ns, age), aged(m.Extra, age))
}

// aged returns rrs, copied with their TTLs lowered by age if age > 0.
func aged(rrs []dns.RR, age uint32) []dns.RR {
	if age == 0 || len(rrs) == 0 {
		return rrs[:len(rrs):len(rrs)]
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Ttl = subTTL(rr.Header().Ttl, age)
	}
	return out
}

// reply writes an answer built from sections; they are not modified.
func (s *Server) reply(w dns.ResponseWriter, r *dns.Msg, q *query, rcode int, aa bool, answer, ns, extra []dns.RR) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Rcode = rcode
	m.Authoritative = aa
	m.RecursionAvailable = len(s.upstreams) > 0
	m.Answer = answer[:len(answer):len(answer)]
	m.Ns = ns[:len(ns):len(ns)]
	if q.opt {
		// Truncate removes the OPT record in place: the slice must be ours.
		m.Extra = make([]dns.RR, 0, len(extra)+1)
		m.Extra = append(m.Extra, extra...)
		m.SetEdns0(maxUDPSize, q.do)
	} else {
		m.Extra = extra[:len(extra):len(extra)]
	}
	m.Truncate(q.limit)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("cluster DNS: writing an answer", "name", q.name, "err", err)
	}
}
