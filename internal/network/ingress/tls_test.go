package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handshake connects to the HTTPS listener with SNI name and returns the
// certificate served.
func (h *harness) handshake(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", h.httpsAddr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestSNI(t *testing.T) {
	h := startProxy(t, Config{})
	_, addr := newBackendServer(t, "web")
	certA, certB, certW, certD := newCert(t, "a.test"), newCert(t, "b.test"), newCert(t, "*.w.test"), newCert(t, "d.test")
	roots := pool(certA, certB, certW, certD)
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", addr),
		tlsSecret("a-tls", "1", certA), tlsSecret("b-tls", "1", certB), tlsSecret("w-tls", "1", certW),
		newIngress("i", 1, tlsFor("a-tls", "a.test"), tlsFor("b-tls", "b.test"), tlsFor("w-tls", "*.w.test"), tlsFor("missing", "c.test"),
			hostRule("a.test", pathTo(prefix, "/", "web", 80)), hostRule("b.test", pathTo(prefix, "/", "web", 80)),
			hostRule("c.test", pathTo(prefix, "/", "web", 80)), hostRule("*.w.test", pathTo(prefix, "/", "web", 80))),
		// A TLS entry without hosts covers the Ingress's rule hosts.
		tlsSecret("d-tls", "1", certD), newIngress("j", 2, tlsFor("d-tls"), hostRule("d.test", pathTo(prefix, "/", "web", 80))))

	for _, tc := range []struct {
		name string
		want *testCert // nil: the handshake fails
	}{
		{"a.test", certA},
		{"b.test", certB},
		{"B.Test", certB},
		{"x.w.test", certW},
		{"d.test", certD},
		{"w.test", nil},
		{"y.x.w.test", nil},
		{"c.test", nil}, // its secret is missing: no fake certificate
		{"unknown.test", nil},
		{"", nil}, // no SNI (an IP address)
	} {
		got, err := h.handshake(tc.name, roots)
		if tc.want == nil {
			// ServerName "" makes tls.Dial use the address, 127.0.0.1,
			// which sends no SNI.
			if err == nil {
				t.Errorf("SNI %q: handshake succeeded, want it to fail", tc.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("SNI %q: %v", tc.name, err)
		} else if !got.Equal(tc.want.leaf) {
			t.Errorf("SNI %q: served the certificate of %v", tc.name, got.DNSNames)
		}
	}
	// The failing host does not disturb the others, over HTTP too.
	c := h.client(roots)
	for _, url := range []string{"https://a.test/", "https://b.test/", "https://x.w.test/"} {
		if code, _, body := get(t, c, url); code != http.StatusOK {
			t.Errorf("GET %s: %d %q", url, code, body)
		}
	}
	if _, err := c.Get("https://c.test/"); err == nil {
		t.Error("GET https://c.test/ succeeded without a certificate")
	}
	if code, _, _ := get(t, c, "http://c.test/"); code != http.StatusOK {
		t.Errorf("GET http://c.test/: %d", code)
	}
}

// Rotating a Secret under a load of new TLS connections: no request
// fails, handshakes that start after the build see the new certificate,
// and an established connection keeps working on the old one.
func TestCertificateRotation(t *testing.T) {
	h := startProxy(t, Config{})
	_, addr := newBackendServer(t, "web")
	oldCert, newCert := newCert(t, "a.test"), newCert(t, "a.test")
	roots := pool(oldCert, newCert)
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("web"), newSlice("web-1", "web", addr),
		tlsSecret("a-tls", "1", oldCert),
		newIngress("i", 1, tlsFor("a-tls", "a.test"), hostRule("a.test", pathTo(prefix, "/", "web", 80))))

	kept := h.client(roots) // one keep-alive connection, made before
	if code, _, _ := get(t, kept, "https://a.test/"); code != http.StatusOK {
		t.Fatalf("first request: %d", code)
	}

	var rotated atomic.Int64 // unix nanos when the new table was in; 0: not yet
	var requests, failures, stale atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			tr := h.transport(roots)
			tr.DisableKeepAlives = true // a handshake per request
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				resp, err := c.Get("https://a.test/")
				if err != nil {
					failures.Add(1)
					t.Errorf("GET during rotation: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				if r := rotated.Load(); r != 0 && start > r && !resp.TLS.PeerCertificates[0].Equal(newCert.leaf) {
					stale.Add(1)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	for i := 2; i < 6; i++ { // rotate back and forth; the last one is newCert
		c := oldCert
		if i%2 == 1 {
			c = newCert
		}
		h.p.UpdateSecret(tlsSecret("a-tls", strconv.Itoa(i), c))
		h.p.Sync()
		time.Sleep(50 * time.Millisecond)
	}
	rotated.Store(time.Now().UnixNano())
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	if failures.Load() != 0 || stale.Load() != 0 || requests.Load() < 10 {
		t.Errorf("%d requests, %d failed, %d saw the old certificate after the rotation", requests.Load(), failures.Load(), stale.Load())
	}
	t.Logf("%d requests through 4 rotations", requests.Load())

	resp, err := kept.Get("https://a.test/")
	if err != nil {
		t.Fatalf("established connection: %v", err)
	}
	resp.Body.Close()
	if !resp.TLS.PeerCertificates[0].Equal(oldCert.leaf) {
		t.Error("the established connection was replaced")
	}
}
