//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/testserver"
)

// ingressClient reaches the node's ingress ports on 127.0.0.1 whatever
// the URL's host (never a lookup), trusting ca, with a new connection per
// request; SNI and Host are the URL's host.
func ingressClient(ca *x509.CertPool, httpAddr, httpsAddr string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		to := httpAddr
		if strings.HasSuffix(addr, ":443") {
			to = httpsAddr
		}
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, to)
	}
	return &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: ca}}}
}

type appAnswer struct {
	PodIP, Message, Path string
	Headers              http.Header
}

func getApp(c *http.Client, url string) (appAnswer, int, error) {
	var a appAnswer
	resp, err := c.Get(url)
	if err != nil {
		return a, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(body, &a)
	} else {
		a.Message = string(body)
	}
	return a, resp.StatusCode, err
}

// TestIngress: examples/ingress on `wharf up`, from this machine as a
// user outside the cluster: host and path routing over HTTP and HTTPS
// with the Secret's certificate, a second host with a certificate of its
// own, an Ingress whose Secret is missing (an Event, its host's handshake
// refused, the others served), a certificate rotated under load without a
// failed request, a WebSocket echo, and the 404/503 pages.
func TestIngress(t *testing.T) {
	c := upCluster(t)
	var ports struct{ IngressHTTP, IngressHTTPS string }
	data, err := os.ReadFile(filepath.Join(c.stateDir, "cluster.json"))
	if err == nil {
		err = json.Unmarshal(data, &ports)
	}
	if err != nil || ports.IngressHTTP == "" {
		t.Fatalf("cluster.json: %v %s", err, data)
	}
	local := func(addr string) string {
		_, port, _ := net.SplitHostPort(addr)
		return "127.0.0.1:" + port
	}
	httpAddr, httpsAddr := local(ports.IngressHTTP), local(ports.IngressHTTPS)

	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir, "e2e ingress CA")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	issue := func(name, host string) (crt, key string) {
		if _, err := ca.EnsureServing(dir, name, []string{host}); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	crt, key := issue("hello", "hello.example.test")
	c.Run("create", "secret", "tls", "hello-tls", "--cert", crt, "--key", key)
	c.Run("apply", "-f", "examples/ingress/")
	c.Run("rollout", "status", "deployment/web", "--timeout=90s")
	c.Run("rollout", "status", "deployment/api", "--timeout=90s")
	testserver.Contains(t, c.Run("get", "ingressclass"), "wharf", "wharf.dev/ingress")

	hc := ingressClient(pool, httpAddr, httpsAddr)
	routed := func(url, message string) appAnswer {
		t.Helper()
		var a appAnswer
		testserver.WaitFor(t, url+" answered by "+message, 30*time.Second, func() (bool, error) {
			var code int
			var err error
			a, code, err = getApp(hc, url)
			return err == nil && code == 200 && a.Message == message, fmt.Errorf("%d %+v %v", code, a, err)
		})
		return a
	}
	for _, scheme := range []string{"http", "https"} {
		a := routed(scheme+"://hello.example.test/", "web")
		routed(scheme+"://hello.example.test/api/users", "api")
		routed(scheme+"://HELLO.example.test/apis", "web") // Prefix is element-wise; hosts ignore case
		if a.Headers.Get("X-Forwarded-Proto") != scheme || a.Headers.Get("X-Forwarded-For") == "" || a.Headers.Get("X-Forwarded-Host") != "hello.example.test" {
			t.Errorf("%s: headers the pod saw: %v", scheme, a.Headers)
		}
	}
	if _, code, _ := getApp(hc, "http://nobody.example.test/"); code != http.StatusNotFound {
		t.Errorf("a host no Ingress has: %d, want 404", code)
	}

	// A second host with its own certificate, and one whose Secret is
	// missing: an Event says so, its handshake is refused, the others go on.
	crt2, key2 := issue("other", "other.example.test")
	c.Run("create", "secret", "tls", "other-tls", "--cert", crt2, "--key", key2)
	for _, h := range []struct{ name, secret string }{{"other", "other-tls"}, {"broken", "missing-tls"}} {
		c.RunIn(fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s}
spec:
  tls: [{hosts: [%[1]s.example.test], secretName: %[2]s}]
  rules:
  - host: %[1]s.example.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}
`, h.name, h.secret), "apply", "-f", "-")
	}
	routed("https://other.example.test/", "api")
	served := func(host string) (*x509.Certificate, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", httpsAddr, &tls.Config{ServerName: host, RootCAs: pool})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0], nil
	}
	if cert, err := served("other.example.test"); err != nil || cert.Subject.CommonName != "other" {
		t.Errorf("other.example.test served %v, %v; want its own certificate", cert, err)
	}
	c.Eventually(`IngressProblem.*"default/missing-tls" not found`, "describe", "ingress", "broken")
	if cert, err := served("broken.example.test"); err == nil {
		t.Errorf("broken.example.test: a handshake with %v, want it refused (no fallback certificate)", cert.Subject)
	}
	routed("https://hello.example.test/", "web")
	routed("http://broken.example.test/", "api") // plain HTTP is unaffected

	// Bad input: a path type the API does not know is refused, naming it;
	// a backend service that does not exist is an Event (and a 503).
	out, err := c.Cmd(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: regex}
spec:
  rules: [{host: regex.example.test, http: {paths: [{path: /a.*, pathType: Regex, backend: {service: {name: api, port: {number: 80}}}}]}}]
`, "apply", "-f", "-").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex"`) {
		t.Errorf("pathType Regex: %v\n%s\nwant it refused, naming the field", err, out)
	}
	c.RunIn(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: nobackend}
spec:
  rules: [{host: nobackend.example.test, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}]}}]
`, "apply", "-f", "-")
	c.Eventually(`IngressProblem.*service "default/nope" not found`, "describe", "ingress", "nobackend")
	if _, code, _ := getApp(hc, "http://nobackend.example.test/"); code != http.StatusServiceUnavailable {
		t.Errorf("a missing backend service: %d, want 503", code)
	}

	// No endpoint: 503 naming the service.
	c.Run("scale", "deployment/api", "--replicas=0")
	testserver.WaitFor(t, "503 for api", 30*time.Second, func() (bool, error) {
		a, code, err := getApp(hc, "http://hello.example.test/api")
		return code == http.StatusServiceUnavailable && strings.Contains(a.Message, "default/api"), fmt.Errorf("%d %q %v", code, a.Message, err)
	})
	c.Run("scale", "deployment/api", "--replicas=2")

	// The certificate rotated under load: new handshakes on four
	// goroutines see no failure, and get the new certificate.
	before, err := served("hello.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(crt); err != nil {
		t.Fatal(err)
	}
	crt, key = issue("hello", "hello.example.test") // a new serial, same names
	var requests, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, code, err := getApp(hc, "https://hello.example.test/")
				requests.Add(1)
				if err != nil || code != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	manifest := c.Run("create", "secret", "tls", "hello-tls", "--cert", crt, "--key", key, "--dry-run=client", "-o", "yaml")
	c.RunIn(manifest, "apply", "-f", "-")
	testserver.WaitFor(t, "the new certificate served", 10*time.Second, func() (bool, error) {
		cert, err := served("hello.example.test")
		return err == nil && cert.SerialNumber.Cmp(before.SerialNumber) != 0, err
	})
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("certificate rotation: %d requests, %d failed", requests.Load(), failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %v", failures.Load(), requests.Load(), firstErr.Load())
	}

	// WebSocket echo through the ingress, over HTTP and HTTPS.
	for _, scheme := range []string{"ws", "wss"} {
		cfg, err := websocket.NewConfig(scheme+"://hello.example.test/ws", "http://hello.example.test/")
		if err != nil {
			t.Fatal(err)
		}
		var conn net.Conn
		if scheme == "ws" {
			conn, err = net.DialTimeout("tcp", httpAddr, 2*time.Second)
		} else {
			conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", httpsAddr,
				&tls.Config{ServerName: "hello.example.test", RootCAs: pool, NextProtos: []string{"http/1.1"}})
		}
		if err != nil {
			t.Fatal(err)
		}
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			t.Fatalf("%s handshake: %v", scheme, err)
		}
		ws.SetDeadline(time.Now().Add(5 * time.Second))
		for _, msg := range []string{"hello", "through the ingress"} {
			var got string
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatal(err)
			}
			if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
				t.Errorf("%s echo of %q: %q, %v", scheme, msg, got, err)
			}
		}
		ws.Close()
	}
}
