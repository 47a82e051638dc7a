package ingress

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Backend transport settings: many requests on few connections per pod.
const (
	dialTimeout         = 2 * time.Second
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 60 * time.Second // shorter than common backends' keep-alive
	// downFor is how long an endpoint that refused a connection is skipped
	// (unless all are), until the next build at the latest.
	downFor = 5 * time.Second
)

// newTransport returns the transport to backends: HTTP/1.1, or HTTP/2
// without TLS (h2c) when h2c is set. Its pool is keyed by endpoint.
func newTransport(h2c bool) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil, // pods are reached directly, whatever HTTP_PROXY says
		DialContext:           d.DialContext,
		MaxIdleConns:          0, // no global limit
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		DisableCompression:    true, // pass encodings through untouched
		ExpectContinueTimeout: time.Second,
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	}
	return t
}

// backend is a service port of one build, shared by every route to it:
// its endpoints and the reverse proxy that reaches them.
type backend struct {
	name        string // "namespace/service", for pages and logs
	endpoints   []*endpoint
	next        atomic.Uint32 // round robin
	transport   http.RoundTripper
	proxy       *httputil.ReverseProxy // nil: no endpoint
	h2c         bool                   // endpoints speak HTTP/2 without TLS
	unavailable []byte                 // 503 page: no endpoint
	badGateway  []byte                 // 502 page
}

type endpoint struct {
	addr      string       // "ip:port"
	downUntil atomic.Int64 // unix nanoseconds; 0: up
}

// markDown skips the endpoint for a while: it refused a connection.
func (e *endpoint) markDown() { e.downUntil.Store(time.Now().Add(downFor).UnixNano()) }

// pick returns the next endpoint, round robin, skipping those that
// refused a connection lately unless all did; except, if not empty, is
// not returned unless it is the only one.
func (b *backend) pick(except string) *endpoint {
	n := uint32(len(b.endpoints))
	start := b.next.Add(1)
	var now int64
	var fallback *endpoint
	for i := range n {
		e := b.endpoints[(start+i)%n]
		if e.addr == except {
			continue
		}
		if d := e.downUntil.Load(); d != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			if d > now {
				if fallback == nil {
					fallback = e
				}
				continue
			}
		}
		return e
	}
	if fallback != nil {
		return fallback
	}
	return b.endpoints[start%n]
}

// rewrite prepares the request to a backend: endpoint, forwarding
// headers. The Host header is passed through; httputil.ReverseProxy has
// removed hop-by-hop headers and the client's X-Forwarded-For, -Host and
// -Proto (the first is appended to here).
func (b *backend) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = b.pick("").addr
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = ""
	}
	h := out.Header
	if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 && ip != "" {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
	} else if ip != "" {
		h["X-Forwarded-For"] = []string{ip}
	}
	if ip != "" {
		h["X-Real-Ip"] = []string{ip}
	} else {
		delete(h, "X-Real-Ip") // never the client's own
	}
	local, _ := in.Context().Value(http.LocalAddrContextKey).(net.Addr)
	proto, port := forwardedProtoPort(connTLS(in) != nil, local)
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{in.Host}
	h["X-Forwarded-Port"] = []string{port}
}

// forwardedProtoPort are X-Forwarded-Proto and -Port of a connection to
// local (nil: unknown), over TLS or not.
func forwardedProtoPort(viaTLS bool, local net.Addr) (proto, port string) {
	proto, port = "http", "80"
	if viaTLS {
		proto, port = "https", "443"
	}
	if a, ok := local.(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	return proto, port
}

// RoundTrip sends a request to its endpoint and, if that refused the
// connection (nothing was sent), marks it down and sends an idempotent
// request without body once more to another endpoint.
func (b *backend) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.transport.RoundTrip(req)
	if err == nil || !dialFailed(err) {
		return resp, err
	}
	failed := req.URL.Host
	for _, e := range b.endpoints {
		if e.addr == failed {
			e.markDown()
		}
	}
	if len(b.endpoints) < 2 || !retryable(req) || req.Context().Err() != nil {
		return nil, err
	}
	retry := *req
	u := *req.URL
	u.Host = b.pick(failed).addr
	retry.URL = &u
	return b.transport.RoundTrip(&retry)
}

// dialFailed says whether err is a failure to connect: no byte was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// newBackend returns the backend name ("namespace/service") with these
// endpoints ("ip:port"), reached through transport (over HTTP/2 without
// TLS if h2c).
func newBackend(name string, addrs []string, transport http.RoundTripper, h2c bool, logger *slog.Logger, errLog *log.Logger) *backend {
	b := &backend{
		name:        name,
		transport:   transport,
		h2c:         h2c,
		unavailable: page(http.StatusServiceUnavailable, "no ready endpoint of service "+name),
		badGateway:  page(http.StatusBadGateway, "service "+name+" did not answer"),
	}
	for _, a := range addrs {
		b.endpoints = append(b.endpoints, &endpoint{addr: a})
	}
	if len(b.endpoints) == 0 {
		return b
	}
	b.next.Store(uint32(time.Now().UnixNano())) // builds do not all start at the first pod
	b.proxy = &httputil.ReverseProxy{
		Rewrite:    b.rewrite,
		Transport:  b,
		BufferPool: bufferPool{},
		ErrorLog:   errLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				return // the client went away
			}
			logger.Debug("ingress: backend request failed", "service", name, "host", r.Host, "path", r.URL.Path, "err", err)
			writePage(w, http.StatusBadGateway, b.badGateway)
		},
	}
	return b
}

// bufferPool lends the copy buffers of httputil.ReverseProxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[32 << 10]byte)[:] }
func (bufferPool) Put(b []byte) {
	if cap(b) == 32<<10 {
		buffers.Put((*[32 << 10]byte)(b[:32<<10]))
	}
}
