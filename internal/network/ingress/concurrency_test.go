package ingress

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Informers feed the proxy from several goroutines while requests and
// handshakes read the table and builds run (run with -race).
func TestConcurrentFeeding(t *testing.T) {
	p := New(Config{})
	_, addr := newBackendServer(t, "web")
	cert := newCert(t, "a.test")
	feedAll(p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", addr))
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	loop := func(fn func(i int)) {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				fn(i)
			}
		})
	}
	loop(func(i int) {
		p.UpdateIngress(newIngress("i", 1, tlsFor("a-tls", "a.test"), hostRule("a.test", pathTo(prefix, "/"+strconv.Itoa(i%3), "web", 80))))
	})
	loop(func(i int) {
		if i%2 == 0 {
			p.UpdateEndpointSlice(newSlice("web-2", "web", addr))
		} else {
			p.DeleteEndpointSlice(ns, "web-2")
		}
	})
	loop(func(i int) { p.UpdateSecret(tlsSecret("a-tls", strconv.Itoa(i), cert)) })
	loop(func(i int) {
		if i%2 == 0 {
			p.UpdateService(newService("api"))
		} else {
			p.DeleteService(ns, "api")
		}
	})
	loop(func(i int) {
		if i%10 == 0 {
			p.Sync()
		}
		_ = p.Problems()
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://b.test/", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("b.test: %d", rec.Code)
		}
		if c, err := p.getCertificate(&tls.ClientHelloInfo{ServerName: "a.test"}); err == nil && !c.Leaf.Equal(cert.leaf) {
			t.Error("a.test: wrong certificate")
		}
	})
	wg.Wait()
	p.UpdateIngress(newIngress("i", 1, hostRule("a.test", pathTo(prefix, "/0", "web", 80))))
	p.Sync()
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://a.test/0", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after the updates: %d %s", rec.Code, rec.Body)
	}
}
