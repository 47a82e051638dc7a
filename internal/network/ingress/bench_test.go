package ingress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxy compares requests through the proxy with requests
// straight to the backend: keep-alive, parallel (-cpu sets the
// parallelism), a small answer. It reports req/s.
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello from the backend\n")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body) //nolint:errcheck
	}))
	defer backend.Close()
	h := startProxy(b, Config{})
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", backend.Listener.Addr().String()),
		newIngress("i", 1, hostRule("a.test", pathTo(prefix, "/", "web", 80))))

	for _, bc := range []struct{ name, url string }{
		{"direct", backend.URL + "/"},
		{"proxy", "http://a.test/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := h.transport(nil)
			tr.MaxIdleConnsPerHost = 256
			if bc.name == "direct" {
				tr.DialContext = nil
			}
			c := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(bc.url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body) //nolint:errcheck
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkLookup is the routing of one request: host and path
// normalisation and the table lookup.
func BenchmarkLookup(b *testing.B) {
	p := New(Config{})
	feed(p, newClass(ourClass, DefaultController, false),
		newIngress("i", 1,
			hostRule("a.test", pathTo(prefix, "/", "root", 80), pathTo(prefix, "/api", "api", 80), pathTo(prefix, "/api/v1/users", "users", 80),
				pathTo(exact, "/healthz", "health", 80), pathTo(prefix, "/static", "static", 80)),
			hostRule("*.w.test", pathTo(prefix, "/", "w", 80))))
	t := p.table.Load()
	b.ReportAllocs()
	for b.Loop() {
		if t.lookup(normalizeHost("A.test:443"), cleanPath("/api/v1/users/42")) == nil {
			b.Fatal("no route")
		}
	}
}
