package ingress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The fast path.
//
// A front serves one listener. Each client connection has one goroutine
// that reads a request, writes it to a pooled connection of an endpoint,
// reads the answer and copies it back, with no other goroutine involved:
// the HTTP/1.1 keep-alive traffic an ingress mostly carries, at about
// half the CPU of net/http's server and Transport (their per-request
// background reads and read/write loops hand each request between
// goroutines and threads several times).
//
// Everything else is handed, with its connection, to net/http and the
// Handler, unchanged: HTTP/2 (ALPN "h2"), HTTP/1.0, upgrades (WebSocket),
// Expect: 100-continue, chunked request bodies, h2c backends, headers
// larger than the read buffer, and anything net/http would refuse (it
// then answers 400 as it always did). The hand-off happens before any
// byte of the request is consumed, so net/http reads it afresh; from then
// on the connection stays with net/http.
//
// Not done by the fast path: noticing that a client went away while its
// request waits for the backend. net/http's server learns it from its
// background read and cancels the backend request; the fast path waits
// for the answer and drops it, which holds an endpoint connection as long
// as a long poll lasts.

// frontBufSize is the read buffer of a client connection: a request's
// header must fit it to take the fast path.
const frontBufSize = 4 << 10

// maxDiscard is how much of an unanswered request body (a request to a
// page: 404, 503, a redirect) is read to keep the connection; more and
// the connection is closed, as net/http does.
const maxDiscard = 256 << 10

var errHeaderTooLarge = errors.New("ingress: request header larger than the fast path's buffer")

type front struct {
	p        *Proxy
	tls      *tls.Config // nil: plain HTTP
	ln       net.Listener
	fallback *http.Server
	handoff  *handoffListener
	closing  atomic.Bool

	mu     sync.Mutex
	conns  map[*frontConn]struct{}
	active sync.WaitGroup // one per tracked connection
}

func (p *Proxy) newFront(base context.Context, ln net.Listener, tlsCfg *tls.Config) *front {
	f := &front{p: p, tls: tlsCfg, ln: ln, conns: map[*frontConn]struct{}{},
		handoff: &handoffListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}}
	f.fallback = &http.Server{
		Handler:           p.Handler(),
		TLSConfig:         tlsCfg, // HTTP/2 for the "h2" connections handed over
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          p.errLog,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if rc, ok := c.(*replayConn); ok && rc.tls != nil {
				return context.WithValue(ctx, tlsStateKey{}, rc.tls)
			}
			return ctx
		},
	}
	return f
}

// serve accepts connections until the listener is closed; nil if that
// was stop's doing.
func (f *front) serve() error {
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				f.p.log.Debug("ingress: accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc := &frontConn{f: f, raw: c, c: newRawIO(c)}
		if !f.track(fc) {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

func (f *front) track(fc *frontConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Load() {
		return false
	}
	f.conns[fc] = struct{}{}
	f.active.Add(1) // under mu with closing false: never after stop's Wait began
	return true
}

func (f *front) untrack(fc *frontConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, fc)
	f.active.Done()
}

// stop stops accepting, closes idle connections and waits until those
// serving a request are done or ctx ends; net/http's side is shut down
// alongside.
func (f *front) stop(ctx context.Context) {
	f.mu.Lock()
	f.closing.Store(true)
	f.ln.Close() //nolint:errcheck // serve returns
	for fc := range f.conns {
		fc.closeIfIdle()
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { f.fallback.Shutdown(ctx) }) //nolint:errcheck // closed after
	done := make(chan struct{})
	go func() { f.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	wg.Wait()
}

// close closes every connection left.
func (f *front) close() {
	f.fallback.Close() //nolint:errcheck // only listener errors
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		fc.raw.Close()
	}
}

// frontConn is a client connection on the fast path.
type frontConn struct {
	f   *front
	raw net.Conn // as accepted: what stop and close close
	c   net.Conn // rawIO over raw, or the TLS connection over that
	br  *bufio.Reader
	tls *tls.ConnectionState // nil: plain HTTP

	mu   sync.Mutex
	idle bool // waiting for a request

	// For the forwarding headers, once per connection.
	clientIP, port, proto string
}

// setIdle records whether the connection waits for a request; false if
// it should close instead (the front is stopping).
func (fc *frontConn) setIdle(idle bool) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.idle = idle
	return !idle || !fc.f.closing.Load()
}

func (fc *frontConn) closeIfIdle() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.idle {
		fc.raw.Close()
	}
}

func (fc *frontConn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			fc.c.Close()
		}
		fc.f.untrack(fc)
	}()
	if fc.f.tls != nil {
		tc := tls.Server(fc.c, fc.f.tls)
		fc.c = tc
		tc.SetDeadline(time.Now().Add(readHeaderTimeout)) //nolint:errcheck // the handshake fails
		if err := tc.Handshake(); err != nil {
			fc.f.p.log.Debug("ingress: TLS handshake failed", "client", tc.RemoteAddr().String(), "err", err)
			return
		}
		tc.SetDeadline(time.Time{}) //nolint:errcheck // a closed connection fails its next read
		st := tc.ConnectionState()
		fc.tls = &st
		if st.NegotiatedProtocol == "h2" {
			handedOff = true
			fc.handOver(tc)
			return
		}
	}
	if host, _, err := net.SplitHostPort(fc.c.RemoteAddr().String()); err == nil {
		fc.clientIP = host
	}
	fc.proto, fc.port = forwardedProtoPort(fc.tls != nil, fc.c.LocalAddr())
	fc.br = bufio.NewReaderSize(fc.c, frontBufSize)
	for {
		if !fc.setIdle(true) {
			return
		}
		fc.c.SetReadDeadline(time.Now().Add(idleTimeout)) //nolint:errcheck // Peek fails
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		fc.setIdle(false)
		fc.c.SetReadDeadline(time.Now().Add(readHeaderTimeout)) //nolint:errcheck // Peek fails
		keep, handoff := fc.serveOne()
		if handoff {
			fc.c.SetDeadline(time.Time{}) //nolint:errcheck // net/http sets its own
			handedOff = true
			fc.handOver(&replayConn{Conn: fc.c, r: fc.br, tls: fc.tls})
			return
		}
		if !keep || fc.f.closing.Load() {
			return
		}
	}
}

// handOver gives c (the connection) to net/http's server, which closes
// it from then on.
func (fc *frontConn) handOver(c net.Conn) {
	fc.f.p.handoffs.Add(1)
	fc.f.handoff.give(c)
}

// serveOne serves the request at the head of the read buffer, or says
// to hand the connection over; keep says whether another request may
// follow on this connection.
func (fc *frontConn) serveOne() (keep, handoff bool) {
	hdr, err := fc.peekHeader()
	if err != nil {
		return false, errors.Is(err, errHeaderTooLarge)
	}
	req, err := parseHeader(hdr)
	if err != nil || !fast(req) {
		return false, true // net/http serves it, or answers the error
	}
	a := fc.f.p.answer(req, fc.tls != nil)
	if a.backend != nil && a.backend.h2c {
		return false, true
	}
	fc.f.p.fastRequests.Add(1)
	fc.br.Discard(len(hdr))           //nolint:errcheck // buffered
	fc.c.SetReadDeadline(time.Time{}) //nolint:errcheck // as net/http: no deadline on bodies
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(fc.c)
	defer func() {
		bw.Reset(nil)
		writers.Put(bw)
	}()
	if a.backend != nil {
		keep = fc.proxy(bw, req, a.backend)
	} else {
		keep = fc.page(bw, req, a.code, a.page, a.location)
	}
	if err := bw.Flush(); err != nil {
		return false, false
	}
	return keep, false
}

// peekHeader returns the request header at the head of the read buffer,
// blank line included, without consuming it.
func (fc *frontConn) peekHeader() ([]byte, error) {
	br := fc.br
	for {
		buf, err := br.Peek(br.Buffered())
		if i := headerEnd(buf); i > 0 {
			return buf[:i], nil
		}
		if err != nil {
			return nil, err
		}
		if br.Buffered() == br.Size() {
			return nil, errHeaderTooLarge
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil { // waits for more
			return nil, err
		}
	}
}

// headerEnd is the length of the header in buf up to and including the
// blank line ending it; 0: not all there.
func headerEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(buf) && buf[i] == '\n':
			return i + 1
		case i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n':
			return i + 2
		}
	}
}

// headerReader parses a header held in memory.
type headerReader struct {
	r  bytes.Reader
	br *bufio.Reader
}

var (
	headerReaders = sync.Pool{New: func() any { return &headerReader{br: bufio.NewReaderSize(nil, frontBufSize)} }}
	writers       = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func parseHeader(hdr []byte) (*http.Request, error) {
	hr := headerReaders.Get().(*headerReader)
	defer headerReaders.Put(hr)
	hr.r.Reset(hdr)
	hr.br.Reset(&hr.r)
	return http.ReadRequest(hr.br)
}

// fast says whether the fast path takes a request: HTTP/1.1 in origin
// form with one valid Host, valid header fields (as net/http's server
// checks them), a body of known length, no upgrade, no Expect.
func fast(req *http.Request) bool {
	if req.ProtoMajor != 1 || req.ProtoMinor != 1 || req.Method == http.MethodConnect ||
		!strings.HasPrefix(req.RequestURI, "/") || req.Host == "" || !httpguts.ValidHostHeader(req.Host) ||
		req.ContentLength < 0 || len(req.TransferEncoding) > 0 {
		return false
	}
	for k, vv := range req.Header {
		switch k {
		case "Upgrade", "Expect":
			return false
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// page answers with one of the proxy's pages (and a Location, if set),
// after reading the request's body.
func (fc *frontConn) page(bw *bufio.Writer, req *http.Request, code int, body []byte, location string) (keep bool) {
	keep = !req.Close && fc.discardBody(req)
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	for _, f := range pageHeader {
		writeField(bw, f[0], f[1])
	}
	writeField(bw, "Content-Length", strconv.Itoa(len(body)))
	writeField(bw, "Date", httpDate())
	if location != "" {
		writeField(bw, "Location", location)
	}
	if !keep {
		writeField(bw, "Connection", "close")
	}
	bw.WriteString("\r\n")
	if req.Method != http.MethodHead {
		bw.Write(body) //nolint:errcheck // Flush reports it
	}
	return keep
}

// discardBody reads an unanswered request body, if small enough.
func (fc *frontConn) discardBody(req *http.Request) bool {
	if req.ContentLength > maxDiscard {
		return false
	}
	_, err := io.CopyN(io.Discard, fc.br, req.ContentLength)
	return err == nil
}

// proxy forwards a request to an endpoint of b and its answer back. A
// connection an endpoint refused marks it down; a request without body
// is then sent once to another endpoint, and also sent again on a new
// connection when a reused one was closed by the endpoint before
// answering (as net/http's Transport does).
func (fc *frontConn) proxy(bw *bufio.Writer, req *http.Request, b *backend) (keep bool) {
	hasBody := req.ContentLength > 0
	again := !hasBody && retryable(req)
	var except string
	for attempt := 0; ; attempt++ {
		e := b.pick(except)
		uc, err := fc.f.p.upstreams.get(context.Background(), e.addr)
		if err == nil && hasBody && uc.reused && !uc.alive() {
			uc.Close()
			uc, err = fc.f.p.upstreams.get(context.Background(), e.addr)
		}
		if err != nil {
			if dialFailed(err) {
				e.markDown()
			}
			if attempt == 0 && again && len(b.endpoints) > 1 {
				except = e.addr
				continue
			}
			fc.f.p.log.Debug("ingress: backend request failed", "service", b.name, "host", req.Host, "path", req.URL.Path, "err", err)
			return fc.page(bw, req, http.StatusBadGateway, b.badGateway, "")
		}
		resp, answered, err := fc.exchange(bw, uc, req)
		if err != nil {
			uc.Close()
			if attempt == 0 && again && uc.reused && !answered {
				continue
			}
			fc.f.p.log.Debug("ingress: backend request failed", "service", b.name, "host", req.Host, "path", req.URL.Path, "err", err)
			if answered {
				return false
			}
			if hasBody { // how much of it was read is unknown: the connection cannot go on
				req = &http.Request{Method: req.Method, Close: true}
			}
			return fc.page(bw, req, http.StatusBadGateway, b.badGateway, "")
		}
		return fc.relay(bw, req, uc, resp)
	}
}

// exchange writes the request (and its body, from the client) to uc and
// reads the answer's header; informational answers (1xx) are passed on
// to the client, which answered then says.
func (fc *frontConn) exchange(bw *bufio.Writer, uc *upstreamConn, req *http.Request) (resp *http.Response, answered bool, err error) {
	fc.writeRequest(uc.bw, req)
	if req.ContentLength > 0 {
		if _, err := io.CopyN(uc.bw, fc.br, req.ContentLength); err != nil {
			return nil, false, err
		}
	}
	if err := uc.bw.Flush(); err != nil {
		return nil, false, err
	}
	for {
		resp, err := http.ReadResponse(uc.br, req)
		if err != nil {
			return nil, answered, err
		}
		if resp.StatusCode >= 200 {
			return resp, answered, nil
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, answered, errors.New("101 Switching Protocols to a request that asked for no upgrade")
		}
		answered = true
		bw.WriteString("HTTP/1.1 ")
		bw.WriteString(resp.Status)
		bw.WriteString("\r\n")
		writeHeader(bw, resp.Header, hopByHop(resp.Header), nil)
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			return nil, answered, err
		}
	}
}

// hopByHop are the header fields a proxy does not pass on (RFC 9110
// 7.6.1, as httputil.ReverseProxy's list).
var hopByHopFields = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// hopByHop returns the fields named by h's Connection header, which are
// not passed on either; nil if none.
func hopByHop(h http.Header) map[string]bool {
	var named map[string]bool
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				if named == nil {
					named = map[string]bool{}
				}
				named[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return named
}

// writeHeader writes the fields of h but the hop-by-hop ones, those in
// skip and set, and the framing ones (Content-Length) that the caller
// writes.
func writeHeader(bw *bufio.Writer, h http.Header, skip, set map[string]bool) {
	for k, vv := range h {
		if skip[k] || set[k] || k == "Content-Length" || isHopByHop(k) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
}

// writeField writes one header field.
func writeField(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString("\r\n")
}

func isHopByHop(k string) bool {
	for _, f := range hopByHopFields {
		if k == f {
			return true
		}
	}
	return false
}

// forwardedFields are set by the proxy, never passed from the client.
var forwardedFields = map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true, "X-Real-Ip": true}

// writeRequest writes the request's line and header as the endpoint is
// to get them: Host passed through, hop-by-hop fields removed (but "Te:
// trailers"), the forwarding fields set as Backend.rewrite sets them.
func (fc *frontConn) writeRequest(w *bufio.Writer, req *http.Request) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.RequestURI)
	w.WriteString(" HTTP/1.1\r\n")
	writeField(w, "Host", req.Host)
	writeHeader(w, req.Header, hopByHop(req.Header), forwardedFields)
	if httpguts.HeaderValuesContainsToken(req.Header["Te"], "trailers") {
		writeField(w, "Te", "trailers")
	}
	if fc.clientIP != "" {
		xff := fc.clientIP
		if prior := req.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + xff
		}
		writeField(w, "X-Forwarded-For", xff)
		writeField(w, "X-Real-Ip", fc.clientIP)
	}
	writeField(w, "X-Forwarded-Proto", fc.proto)
	writeField(w, "X-Forwarded-Host", req.Host)
	writeField(w, "X-Forwarded-Port", fc.port)
	// A body's length; 0 too where a body is expected, as net/http sends it.
	if req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		writeField(w, "Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	w.WriteString("\r\n")
}

// relay copies the endpoint's answer to the client: a body of known
// length as it is, one of unknown length chunked (trailers included),
// sent on as it arrives. The endpoint's connection goes back to the pool
// if the answer was read whole and it may be kept.
func (fc *frontConn) relay(bw *bufio.Writer, req *http.Request, uc *upstreamConn, resp *http.Response) (keep bool) {
	keep = !req.Close
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	chunked := !noBody && resp.ContentLength < 0
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(resp.Status)
	bw.WriteString("\r\n")
	writeHeader(bw, resp.Header, hopByHop(resp.Header), nil)
	switch {
	case noBody:
		for _, v := range resp.Header["Content-Length"] { // as the endpoint said
			writeField(bw, "Content-Length", v)
		}
	case chunked:
		writeField(bw, "Transfer-Encoding", "chunked")
		if len(resp.Trailer) > 0 {
			writeField(bw, "Trailer", strings.Join(slices.Collect(maps.Keys(resp.Trailer)), ", "))
		}
	default:
		writeField(bw, "Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	if _, ok := resp.Header["Date"]; !ok {
		writeField(bw, "Date", httpDate())
	}
	if !keep {
		writeField(bw, "Connection", "close")
	}
	bw.WriteString("\r\n")
	if noBody {
		fc.release(uc, resp)
		return keep
	}
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf[:])
		if n > 0 {
			if chunked {
				bw.WriteString(strconv.FormatInt(int64(n), 16))
				bw.WriteString("\r\n")
			}
			bw.Write(buf[:n]) //nolint:errcheck // sticky, checked below
			if chunked {
				bw.WriteString("\r\n")
			}
			if uc.br.Buffered() == 0 { // nothing more at hand: send what came
				if err := bw.Flush(); err != nil {
					uc.Close()
					return false
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil { // the endpoint failed half-way: the client sees a cut answer
			uc.Close()
			fc.f.p.log.Debug("ingress: backend answer cut", "host", req.Host, "path", req.URL.Path, "err", rerr)
			return false
		}
	}
	if chunked {
		bw.WriteString("0\r\n")
		writeHeader(bw, resp.Trailer, nil, nil)
		bw.WriteString("\r\n")
	}
	fc.release(uc, resp)
	return keep
}

// release puts the endpoint's connection back after a whole answer,
// unless the endpoint asked to close it.
func (fc *frontConn) release(uc *upstreamConn, resp *http.Response) {
	if resp.Close {
		uc.Close()
		return
	}
	fc.f.p.upstreams.put(uc)
}

// handoffListener gives connections to net/http's server.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c over, or closes it if the server is gone.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// replayConn is a connection handed over with what was read of it but
// not consumed.
type replayConn struct {
	net.Conn
	r   *bufio.Reader
	tls *tls.ConnectionState // the connection is TLS: this is its state
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// tlsStateKey is the context key of a handed-over TLS connection's state
// (net/http sets Request.TLS only for a *tls.Conn).
type tlsStateKey struct{}

// connTLS is the TLS state of a request's connection; nil: plain HTTP.
func connTLS(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	s, _ := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	return s
}

// httpDate is the Date field's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &cachedDate{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[cachedDate]
