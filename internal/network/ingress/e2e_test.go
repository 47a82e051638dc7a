package ingress

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHTTPRouting(t *testing.T) {
	h := startProxy(t, Config{})
	_, webAddr := newBackendServer(t, "web")
	_, apiAddr := newBackendServer(t, "api")
	c := h.client(nil)

	if code, _, body := get(t, c, "http://a.test/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("before the first Sync: %d %q", code, body)
	}
	feedAll(h.p, newClass(ourClass, DefaultController, false),
		newService("web"), newSlice("web-1", "web", webAddr),
		newService("api"), newSlice("api-1", "api", apiAddr),
		newService("empty"),
		newIngress("i", 1, hostRule("a.test",
			pathTo(prefix, "/web", "web", "http"),
			pathTo(prefix, "/api", "api", 80),
			pathTo(prefix, "/empty", "empty", 80),
			pathTo(prefix, "/nope", "nope", 80),
		)))

	t.Run("routes", func(t *testing.T) {
		for _, tc := range []struct{ url, want string }{
			{"http://a.test/web", "web"},
			{"http://a.test/web/x?q=1", "web"},
			{"http://A.TEST/api/v1", "api"},
		} {
			code, e, body := get(t, c, tc.url)
			if code != http.StatusOK || e == nil || e.Backend != tc.want {
				t.Errorf("GET %s: %d %q, want backend %s", tc.url, code, body, tc.want)
			}
		}
	})
	t.Run("forwarded headers", func(t *testing.T) {
		_, e, _ := get(t, c, "http://a.test/web/x?q=1", "X-Forwarded-For", "203.0.113.7", "Connection", "X-Hop", "X-Hop", "1", "X-Forwarded-Proto", "https", "X-Real-Ip", "203.0.113.8", "X-Forwarded-Port", "1")
		_, port, _ := net.SplitHostPort(h.httpAddr)
		for k, want := range map[string]string{
			"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
			"X-Real-Ip":         "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "a.test",
			"X-Forwarded-Port":  port,
			"X-Hop":             "",
		} {
			if got := strings.Join(e.Header[k], ","); got != want {
				t.Errorf("backend saw %s %q, want %q", k, got, want)
			}
		}
		if e.Host != "a.test" || e.URI != "/web/x?q=1" {
			t.Errorf("backend saw Host %q, URI %q", e.Host, e.URI)
		}
	})
	t.Run("pages", func(t *testing.T) {
		for _, tc := range []struct {
			url  string
			code int
			text string
		}{
			{"http://b.test/", http.StatusNotFound, "no Ingress rule matches"},
			{"http://a.test/other", http.StatusNotFound, "no Ingress rule matches"},
			{"http://a.test/empty", http.StatusServiceUnavailable, "no ready endpoint of service default/empty"},
			{"http://a.test/nope", http.StatusServiceUnavailable, "no ready endpoint of service default/nope"},
		} {
			code, _, body := get(t, c, tc.url)
			if code != tc.code || !strings.Contains(body, tc.text) || !strings.Contains(body, "<html>") {
				t.Errorf("GET %s: %d %q, want %d with %q", tc.url, code, body, tc.code, tc.text)
			}
		}
	})
}

func TestBadGateway(t *testing.T) {
	h := startProxy(t, Config{})
	// A backend that closes connections without answering.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer broken.Close()
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", broken.Listener.Addr().String()),
		newIngress("i", 1, defaultBackend("web", 80)))
	code, _, body := get(t, h.client(nil), "http://a.test/")
	if code != http.StatusBadGateway || !strings.Contains(body, "service default/web did not answer") || strings.Contains(body, "EOF") {
		t.Errorf("got %d %q, want a 502 page without details", code, body)
	}
}

// Requests are spread over the endpoints; a removed endpoint gets no more
// (the table is rebuilt on its own after the first Sync); a refused
// connection is retried on another endpoint.
func TestEndpoints(t *testing.T) {
	h := startProxy(t, Config{})
	_, addr1 := newBackendServer(t, "one")
	_, addr2 := newBackendServer(t, "two")
	dead := closedAddr(t)
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"),
		newSlice("web-1", "web", addr1), newSlice("web-2", "web", addr2),
		newIngress("i", 1, defaultBackend("web", "http")))
	c := h.client(nil)
	seen := func(n int) map[string]int {
		m := map[string]int{}
		for range n {
			code, e, body := get(t, c, "http://a.test/")
			if code != http.StatusOK {
				t.Fatalf("GET: %d %q", code, body)
			}
			m[e.Backend]++
		}
		return m
	}
	if m := seen(20); m["one"] != 10 || m["two"] != 10 {
		t.Errorf("round robin: %v", m)
	}

	h.p.DeleteEndpointSlice(ns, "web-2") // no Sync: the debounced build
	waitFor(t, "endpoint two to be removed", func() bool { return seen(2)["two"] == 0 })
	if m := seen(20); m["one"] != 20 {
		t.Errorf("after removing two: %v", m)
	}

	h.p.UpdateEndpointSlice(newSlice("web-2", "web", dead))
	h.p.Sync()
	if m := seen(20); m["one"] != 20 {
		t.Errorf("with a dead endpoint: %v", m)
	}
	// A POST is not retried (its body may be gone), but the failed
	// connections of the GETs have marked the dead endpoint down.
	resp, err := c.Post("http://a.test/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST with a dead endpoint marked down: %d", resp.StatusCode)
	}
}

func TestRetryOnlyIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method string
		body   bool
		want   bool
	}{
		{http.MethodGet, false, true},
		{http.MethodHead, false, true},
		{http.MethodDelete, false, true},
		{http.MethodPut, true, false},
		{http.MethodPost, false, false},
		{http.MethodPatch, false, false},
	} {
		var body io.Reader
		if tc.body {
			body = strings.NewReader("x")
		}
		req := httptest.NewRequest(tc.method, "http://a.test/", body)
		if !tc.body {
			req.Body = nil
		}
		if got := retryable(req); got != tc.want {
			t.Errorf("%s (body %v): retryable %v, want %v", tc.method, tc.body, got, tc.want)
		}
	}
}

func TestRedirect(t *testing.T) {
	h := startProxy(t, Config{})
	_, addr := newBackendServer(t, "web")
	cert := newCert(t, "a.test")
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", addr),
		tlsSecret("a-tls", "1", cert),
		newIngress("i", 1, annotate(annotationSSLRedirect, "true"), tlsFor("a-tls", "a.test"),
			hostRule("a.test", pathTo(prefix, "/", "web", 80)), hostRule("b.test", pathTo(prefix, "/", "web", 80))),
		newIngress("j", 2, tlsFor("a-tls", "c.test"), hostRule("c.test", pathTo(prefix, "/", "web", 80))), // no annotation
	)
	c := h.client(pool(cert))
	_, port, _ := net.SplitHostPort(h.httpsAddr)

	resp, err := c.Get("http://a.test/x/y?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://a.test:" + port + "/x/y?q=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if code, e, _ := get(t, c, "https://a.test/x"); code != http.StatusOK || e.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("over HTTPS: %d %+v", code, e)
	}
	for _, url := range []string{"http://b.test/", "http://c.test/"} { // not a TLS host; no annotation
		if code, _, _ := get(t, c, url); code != http.StatusOK {
			t.Errorf("%s: %d, want 200", url, code)
		}
	}
}

func TestHTTP2(t *testing.T) {
	h := startProxy(t, Config{})
	_, addr := newBackendServer(t, "web")
	cert := newCert(t, "a.test")
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", addr),
		tlsSecret("a-tls", "1", cert), newIngress("i", 1, tlsFor("a-tls", "a.test"), hostRule("a.test", pathTo(prefix, "/", "web", 80))))
	c := h.client(pool(cert))
	var wg sync.WaitGroup
	for range 10 { // concurrent streams on one connection
		wg.Go(func() {
			resp, err := c.Get("https://a.test/h2")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
				t.Errorf("got %s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if _, e, _ := get(t, c, "https://a.test/h2"); e.Proto != "HTTP/1.1" {
		t.Errorf("backend spoke %s, want HTTP/1.1", e.Proto)
	}
}

func TestH2CBackend(t *testing.T) {
	h := startProxy(t, Config{})
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto) //nolint:errcheck
	}))
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	backend.Config.Protocols = &protos
	backend.Start()
	defer backend.Close()
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("grpc"), newSlice("grpc-1", "grpc", backend.Listener.Addr().String()),
		newIngress("i", 1, annotate(annotationBackendProtocol, "h2c"), defaultBackend("grpc", 80)))
	if code, _, body := get(t, h.client(nil), "http://a.test/"); code != http.StatusOK || body != "HTTP/2.0" {
		t.Errorf("got %d %q, want the backend to see HTTP/2.0", code, body)
	}
}

// A request in flight when Serve's context ends is answered; Serve
// returns nil and the listeners are closed.
func TestServeStops(t *testing.T) {
	h := startProxy(t, Config{})
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done") //nolint:errcheck
	}))
	defer slow.Close()
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", slow.Listener.Addr().String()),
		newIngress("i", 1, defaultBackend("web", 80)))
	c := h.client(nil)
	res := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://a.test/")
		if err != nil {
			res <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		res <- fmt.Sprint(resp.StatusCode, " ", string(body), err)
	}()
	<-started
	if err := h.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if r := <-res; r != "200 done<nil>" {
		t.Errorf("request in flight: %s", r)
	}
	if conn, err := net.Dial("tcp", h.httpAddr); err == nil {
		conn.Close()
		t.Error("the HTTP listener still accepts after Serve returned")
	}
}
