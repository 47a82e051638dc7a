package ingress

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fastBackend answers the fast path's cases by path.
func fastBackend(t *testing.T, release <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/body":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %d %q te=%v", r.Method, len(b), b, r.TransferEncoding)
		case "/head":
			w.Header().Set("Content-Length", "42")
			if r.Method != http.MethodHead {
				w.Write(make([]byte, 42)) //nolint:errcheck
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/notmod":
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints") //nolint:errcheck
		case "/hop":
			w.Header().Set("Connection", "X-Private")
			w.Header().Set("X-Private", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-Public", "1")
			fmt.Fprintf(w, "secret=%q proxy-auth=%q public=%q", r.Header.Get("X-Secret"), r.Header.Get("Proxy-Authorization"), r.Header.Get("X-Client"))
		case "/stream":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "one") //nolint:errcheck
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "two") //nolint:errcheck
			w.Header().Set("X-Sum", "6")
		case "/cut":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "0123456789") //nolint:errcheck
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		default:
			fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawClient speaks HTTP/1.x over one connection, byte for byte.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one answer to a request of method; its body whole.
func (rc *rawClient) read(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

func TestFastPath(t *testing.T) {
	h := startProxy(t, Config{})
	release := make(chan struct{})
	be := fastBackend(t, release)
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", be.Listener.Addr().String()),
		newService("empty"), newIngress("i", 1, defaultBackend("web", 80), hostRule("p.test", pathTo(prefix, "/", "empty", 80))))

	for _, tc := range []struct {
		name     string
		request  string // sent as is
		method   string
		status   int
		body     string            // "": none (unless contains)
		contains string            // in the body
		header   map[string]string // "" value: absent
		interim  int               // an informational answer first
		handoff  bool              // served by net/http, not the fast path
		sameConn bool              // another request is then answered on the connection
	}{
		{name: "GET", request: "GET /x?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n", status: 200, body: "GET /x?q=1", sameConn: true},
		{name: "POST with a body", request: "POST /body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: `POST 5 "hello" te=[]`, sameConn: true},
		{name: "POST without a body", request: "POST /body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n", status: 200, body: `POST 0 "" te=[]`, sameConn: true},
		{name: "chunked upload", request: "POST /body HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 200, body: `POST 3 "abc" te=[chunked]`, handoff: true, sameConn: true},
		{name: "Expect 100-continue", request: "POST /body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok", interim: 100, status: 200, body: `POST 2 "ok" te=[]`, handoff: true, sameConn: true},
		{name: "HEAD keeps the length", request: "HEAD /head HTTP/1.1\r\nHost: a.test\r\n\r\n", method: "HEAD", status: 200, header: map[string]string{"Content-Length": "42"}, sameConn: true},
		{name: "204", request: "GET /empty HTTP/1.1\r\nHost: a.test\r\n\r\n", status: 204, sameConn: true},
		{name: "304", request: "GET /notmod HTTP/1.1\r\nHost: a.test\r\n\r\n", status: 304, header: map[string]string{"Etag": `"v1"`}, sameConn: true},
		{name: "hop-by-hop fields dropped both ways",
			request: "GET /hop HTTP/1.1\r\nHost: a.test\r\nConnection: X-Secret\r\nX-Secret: 1\r\nProxy-Authorization: Basic eA==\r\nX-Client: 1\r\n\r\n",
			status:  200, body: `secret="" proxy-auth="" public="1"`,
			header: map[string]string{"X-Private": "", "Keep-Alive": "", "X-Public": "1"}, sameConn: true},
		{name: "client closes", request: "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n", status: 200, body: "GET /"},
		{name: "HTTP/1.0", request: "GET /old HTTP/1.0\r\nHost: a.test\r\n\r\n", status: 200, body: "GET /old", handoff: true},
		{name: "no Host", request: "GET / HTTP/1.1\r\n\r\n", status: 400, handoff: true},
		{name: "bad header line", request: "GET / HTTP/1.1\r\nHost: a.test\r\nno colon\r\n\r\n", status: 400, handoff: true},
		{name: "header larger than the buffer", request: "GET /big HTTP/1.1\r\nHost: a.test\r\nCookie: " + strings.Repeat("c", 6000) + "\r\n\r\n", status: 200, body: "GET /big", handoff: true, sameConn: true},
		{name: "page, its request's body read", request: "POST / HTTP/1.1\r\nHost: p.test\r\nContent-Length: 3\r\n\r\nabc", status: 503, contains: "no ready endpoint of service default/empty", sameConn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fast0, handoffs0 := h.p.fastRequests.Load(), h.p.handoffs.Load()
			rc := dialRaw(t, h.httpAddr)
			rc.send(tc.request)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			if tc.interim != 0 {
				if resp, _ := rc.read(method); resp.StatusCode != tc.interim {
					t.Fatalf("got %d first, want %d", resp.StatusCode, tc.interim)
				}
			}
			resp, body := rc.read(method)
			if resp.Close == tc.sameConn {
				t.Errorf("answer says close %v, want %v", resp.Close, !tc.sameConn)
			}
			if resp.StatusCode != tc.status || (tc.body != "" || tc.status < 400) && body != tc.body || !strings.Contains(body, tc.contains) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body+tc.contains)
			}
			for k, want := range tc.header {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if tc.sameConn {
				rc.send("GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n")
				if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || body != "GET /next" {
					t.Errorf("next request on the connection: %d %q", resp.StatusCode, body)
				}
			} else if _, err := rc.br.ReadByte(); err != io.EOF {
				t.Errorf("the connection stayed open (%v), want it closed", err)
			}
			fast, handoffs := h.p.fastRequests.Load()-fast0, h.p.handoffs.Load()-handoffs0
			if tc.handoff && handoffs != 1 || !tc.handoff && (handoffs != 0 || fast == 0) {
				t.Errorf("fast path served %d, handed off %d; want handed off: %v", fast, handoffs, tc.handoff)
			}
		})
	}

	t.Run("pipelined", func(t *testing.T) {
		rc := dialRaw(t, h.httpAddr)
		rc.send("GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\nPOST /body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nxGET /3 HTTP/1.1\r\nHost: b.test\r\n\r\n")
		for _, want := range []string{"GET /1", `POST 1 "x" te=[]`, "GET /3"} {
			if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || body != want {
				t.Errorf("got %d %q, want %q", resp.StatusCode, body, want)
			}
		}
	})
	t.Run("1xx passed on", func(t *testing.T) {
		rc := dialRaw(t, h.httpAddr)
		rc.send("GET /hints HTTP/1.1\r\nHost: a.test\r\n\r\n")
		hints, _ := rc.read(http.MethodGet)
		if hints.StatusCode != http.StatusEarlyHints || hints.Header.Get("Link") == "" {
			t.Fatalf("first answer %d %v, want 103 with Link", hints.StatusCode, hints.Header)
		}
		if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || body != "after hints" {
			t.Errorf("then %d %q", resp.StatusCode, body)
		}
	})
	t.Run("streamed as it comes, trailers kept", func(t *testing.T) {
		rc := dialRaw(t, h.httpAddr)
		rc.send("GET /stream HTTP/1.1\r\nHost: a.test\r\n\r\n")
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 3)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "one" {
			t.Fatalf("first part %q, %v: want it before the backend finishes", first, err)
		}
		close(release)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "two" || resp.Trailer.Get("X-Sum") != "6" {
			t.Errorf("rest %q, trailer %v, %v", rest, resp.Trailer, err)
		}
	})
	t.Run("an answer cut short cuts the client's", func(t *testing.T) {
		rc := dialRaw(t, h.httpAddr)
		rc.send("GET /cut HTTP/1.1\r\nHost: a.test\r\n\r\n")
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("read %q whole, want an error", b)
		}
	})
	t.Run("HTTPS with HTTP/1.1", func(t *testing.T) {
		cert := newCert(t, "s.test")
		feedAll(h.p, tlsSecret("s-tls", "1", cert), newIngress("s", 2, tlsFor("s-tls", "s.test"), hostRule("s.test", pathTo(prefix, "/", "web", 80))))
		fast0 := h.p.fastRequests.Load()
		c, err := tls.Dial("tcp", h.httpsAddr, &tls.Config{ServerName: "s.test", RootCAs: pool(cert), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rc := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
		for range 3 {
			rc.send("GET /hop HTTP/1.1\r\nHost: s.test\r\nX-Client: tls\r\n\r\n")
			if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || body != `secret="" proxy-auth="" public="tls"` {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
		}
		if n := h.p.fastRequests.Load() - fast0; n != 3 {
			t.Errorf("fast path served %d of 3", n)
		}
	})
}

// An endpoint closing its idle connections (a short keep-alive) costs no
// request: one without body is sent again on a new connection, one with
// a body is never written to a connection the endpoint has closed.
func TestFastPathStaleConnections(t *testing.T) {
	h := startProxy(t, Config{})
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	be.Config.IdleTimeout = 20 * time.Millisecond
	be.Start()
	defer be.Close()
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", be.Listener.Addr().String()),
		newIngress("i", 1, defaultBackend("web", 80)))
	rc := dialRaw(t, h.httpAddr)
	for i := range 6 {
		req := "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
		want := "GET "
		if i%2 == 1 {
			req = "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\n\r\nbody"
			want = "POST body"
		}
		rc.send(req)
		if resp, body := rc.read(http.MethodGet); resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
		time.Sleep(60 * time.Millisecond) // the endpoint closes the idle connection
	}
}

// Stopping closes idle keep-alive connections at once.
func TestFastPathStopClosesIdle(t *testing.T) {
	h := startProxy(t, Config{})
	be := fastBackend(t, nil)
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", be.Listener.Addr().String()),
		newIngress("i", 1, defaultBackend("web", 80)))
	rc := dialRaw(t, h.httpAddr)
	rc.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	rc.read(http.MethodGet)
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection after stop: %v, want EOF", err)
	}
	if d := time.Since(start); d >= shutdownGrace {
		t.Errorf("stop took %v with only an idle connection: it waited for the grace period", d)
	}
}

func TestHeaderEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0},
		{"", 0},
		{"\n\n", 2},
	} {
		if got := headerEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("headerEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func FuzzHeaderEnd(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nx"))
	f.Add([]byte("\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headerEnd(b)
		if n < 0 || n > len(b) {
			t.Fatalf("headerEnd = %d of %d bytes", n, len(b))
		}
		if n > 0 && !strings.HasSuffix(string(b[:n]), "\n\n") && !strings.HasSuffix(string(b[:n]), "\n\r\n") {
			t.Fatalf("header %q does not end with a blank line", b[:n])
		}
		if n == 0 && (strings.Contains(string(b), "\n\n") || strings.Contains(string(b), "\n\r\n")) {
			t.Fatalf("no end found in %q", b)
		}
	})
}
