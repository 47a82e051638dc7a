package clusterdns

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	// batchSize is the most queries one read takes off the socket.
	batchSize = 32
	// maxWaiting is the most UDP queries waiting for an upstream.
	maxWaiting = 1000
)

// batchConn reads and writes many datagrams a system call (recvmmsg and
// sendmmsg on Linux). ipv4.Message and ipv6.Message are one type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchable reports whether pc can be served in batches: a UDP socket
// bound to one address, so that answers leave from the address queries
// came to without per-datagram control messages. A wildcard socket is
// left to the dns package's server, which sets the source of each answer.
func batchable(pc net.PacketConn) (*net.UDPConn, bool) {
	u, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, false
	}
	la, ok := u.LocalAddr().(*net.UDPAddr)
	return u, ok && !la.IP.IsUnspecified()
}

// serveBatches answers the queries on u until u is closed: it takes every
// queued query with one read, answers those it can at once and sends the
// answers with one write. A query that needs an upstream gets a goroutine
// of its own so that it holds up no other. One reader answers some 70,000
// queries a second on a small VM; a second one only adds wake-ups (a
// hand-off of the socket per batch), which cost more than they bring.
func (s *Server) serveBatches(u *net.UDPConn) error {
	var deferred sync.WaitGroup
	defer deferred.Wait()
	var bc batchConn = ipv4.NewPacketConn(u)
	if u.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
		bc = ipv6.NewPacketConn(u)
	}
	return s.readBatches(u, bc, &deferred)
}

func (s *Server) readBatches(u *net.UDPConn, bc batchConn, deferred *sync.WaitGroup) error {
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, 0, batchSize)
	ws := make([]batchWriter, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.DefaultMsgSize)}
		ws[i].bufs = make([][]byte, 1)
	}
	for {
		n, err := bc.ReadBatch(in, 0)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			// Nothing a datagram does stops the server; back off a little.
			s.log.Warn("cluster DNS: reading UDP", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		out = out[:0]
		for i := range n {
			w := &ws[i]
			w.conn, w.addr, w.answer, w.deferred = u, in[i].Addr, nil, false
			r := s.serveDatagram(w, in[i].Buffers[0][:in[i].N])
			if w.deferred && s.waiting.Add(1) > maxWaiting {
				// Upstreams this slow or a flood of new names: fail fast
				// rather than pile up goroutines.
				s.waiting.Add(-1)
				w.deferred = false
				m := new(dns.Msg)
				m.SetRcode(r, dns.RcodeServerFailure)
				if err := w.WriteMsg(m); err != nil {
					s.log.Debug("cluster DNS: writing SERVFAIL", "err", err)
				}
			}
			switch {
			case w.deferred:
				deferred.Add(1)
				go func(addr net.Addr) {
					defer deferred.Done()
					defer s.waiting.Add(-1)
					s.ServeDNS(&udpWriter{conn: u, addr: addr}, r)
				}(w.addr)
			case w.answer != nil:
				w.bufs[0] = w.answer
				out = append(out, ipv4.Message{Buffers: w.bufs, Addr: w.addr})
			}
		}
		for len(out) > 0 {
			k, err := bc.WriteBatch(out, 0)
			if err != nil {
				// The answer that failed is lost (its client asks again);
				// the others still go.
				s.log.Debug("cluster DNS: writing a UDP answer", "to", out[max(k, 0)].Addr, "err", err)
				k = max(k, 0) + 1
			}
			out = out[min(k, len(out)):]
		}
	}
}

// serveDatagram answers one query as the dns package's server would:
// datagrams too short for a header and responses are dropped, what does
// not unpack gets FORMERR. It returns the unpacked query.
func (s *Server) serveDatagram(w *batchWriter, b []byte) *dns.Msg {
	if len(b) < 12 || b[2]&0x80 != 0 {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		m := new(dns.Msg)
		m.Id, m.Response, m.Opcode, m.Rcode = binary.BigEndian.Uint16(b), true, int(b[2]>>3)&0xF, dns.RcodeFormatError
		if err := w.WriteMsg(m); err != nil {
			s.log.Debug("cluster DNS: writing FORMERR", "err", err)
		}
		return nil
	}
	s.ServeDNS(w, r)
	return r
}

// A deferrer is a ResponseWriter whose caller cannot wait for an
// upstream: the query is handed back to it instead.
type deferrer interface{ deferQuery() }

// batchWriter keeps an answer for the batch's write.
type batchWriter struct {
	conn     *net.UDPConn
	addr     net.Addr
	answer   []byte // what was written; nil: nothing
	store    []byte // reused for the answers of this slot
	bufs     [][]byte
	deferred bool
}

func (w *batchWriter) deferQuery() { w.deferred = true }

func (w *batchWriter) Write(b []byte) (int, error) {
	w.store = append(w.store[:0], b...)
	w.answer = w.store
	return len(b), nil
}

func (w *batchWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.store[:cap(w.store)])
	if err != nil {
		return err
	}
	w.store, w.answer = b, b
	return nil
}

func (w *batchWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *batchWriter) RemoteAddr() net.Addr { return w.addr }
func (w *batchWriter) Close() error         { return nil }
func (w *batchWriter) TsigStatus() error    { return nil }
func (w *batchWriter) TsigTimersOnly(bool)  {}
func (w *batchWriter) Hijack()              {}

// udpWriter answers one deferred query.
type udpWriter struct {
	conn *net.UDPConn
	addr net.Addr
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteTo(b, w.addr) }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.addr }
func (w *udpWriter) Close() error         { return nil }
func (w *udpWriter) TsigStatus() error    { return nil }
func (w *udpWriter) TsigTimersOnly(bool)  {}
func (w *udpWriter) Hijack()              {}
