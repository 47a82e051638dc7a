package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	ns        = "default"
	ourClass  = "wharf"
	otherCtrl = "example.com/other"
)

// epoch is the creation time of the objects of the tests; an Ingress's
// age in seconds is added to it (the smaller, the older).
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type ingOpt func(*networkingv1.Ingress)

func newIngress(name string, age int, opts ...ingOpt) *networkingv1.Ingress {
	in := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second)),
	}}
	in.Spec.IngressClassName = new(ourClass)
	for _, o := range opts {
		o(in)
	}
	return in
}

func className(c string) ingOpt {
	return func(in *networkingv1.Ingress) {
		if c == "" {
			in.Spec.IngressClassName = nil
		} else {
			in.Spec.IngressClassName = new(c)
		}
	}
}

func annotate(k, v string) ingOpt {
	return func(in *networkingv1.Ingress) {
		if in.Annotations == nil {
			in.Annotations = map[string]string{}
		}
		in.Annotations[k] = v
	}
}

func hostRule(host string, paths ...networkingv1.HTTPIngressPath) ingOpt {
	return func(in *networkingv1.Ingress) {
		r := networkingv1.IngressRule{Host: host}
		if paths != nil {
			r.HTTP = &networkingv1.HTTPIngressRuleValue{Paths: paths}
		}
		in.Spec.Rules = append(in.Spec.Rules, r)
	}
}

func defaultBackend(svc string, port any) ingOpt {
	return func(in *networkingv1.Ingress) { in.Spec.DefaultBackend = backendTo(svc, port) }
}

func tlsFor(secret string, hosts ...string) ingOpt {
	return func(in *networkingv1.Ingress) {
		in.Spec.TLS = append(in.Spec.TLS, networkingv1.IngressTLS{Hosts: hosts, SecretName: secret})
	}
}

// backendTo names a service port by number (int) or name (string).
func backendTo(svc string, port any) *networkingv1.IngressBackend {
	b := &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc}}
	switch p := port.(type) {
	case int:
		b.Service.Port.Number = int32(p)
	case string:
		b.Service.Port.Name = p
	}
	return b
}

func pathTo(typ networkingv1.PathType, p, svc string, port any) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &typ, Backend: *backendTo(svc, port)}
}

const (
	exact  = networkingv1.PathTypeExact
	prefix = networkingv1.PathTypePrefix
	implSp = networkingv1.PathTypeImplementationSpecific
)

func newClass(name, controller string, isDefault bool) *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
	if isDefault {
		c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return c
}

// newService has one TCP port named "http", 80, unless ports are given
// as name, number pairs.
func newService(name string, ports ...any) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if len(ports) == 0 {
		ports = []any{"http", 80}
	}
	for i := 0; i+1 < len(ports); i += 2 {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: ports[i].(string), Port: int32(ports[i+1].(int)), Protocol: corev1.ProtocolTCP,
			TargetPort: intstr.FromInt32(8080),
		})
	}
	return svc
}

// newSlice is a slice of service with port "http" and ready endpoints
// "ip:port" (all of the same port).
func newSlice(name, svc string, addrs ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	port := 0
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			panic(err)
		}
		port, _ = strconv.Atoi(p)
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}})
	}
	es.Ports = []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(port)), Protocol: new(corev1.ProtocolTCP)}}
	return es
}

type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

// newCert returns a self-signed certificate for hosts.
func newCert(t testing.TB, hosts ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		DNSNames:              hosts,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		leaf:    leaf,
	}
}

func tlsSecret(name, rv string, c *testCert) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: c.certPEM, corev1.TLSPrivateKeyKey: c.keyPEM},
	}
}

func pool(certs ...*testCert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.leaf)
	}
	return p
}

// echo is what a test backend answers: who it is and what it was sent.
type echo struct {
	Backend string      `json:"backend"`
	Host    string      `json:"host"`
	URI     string      `json:"uri"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
}

// newBackendServer starts an HTTP backend on 127.0.0.1 answering its
// name; it returns the endpoint "ip:port".
func newBackendServer(t testing.TB, name string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echo{Backend: name, Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Header: r.Header}) //nolint:errcheck
	}))
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().String()
}

// harness is a Proxy served on 127.0.0.1 by Serve.
type harness struct {
	p                   *Proxy
	httpAddr, httpsAddr string
	stop                func() error // ends Serve and returns what it returned
}

func startProxy(t testing.TB, cfg Config) *harness {
	t.Helper()
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = httpsLn.Addr().(*net.TCPAddr).Port
	}
	h := &harness{p: New(cfg), httpAddr: httpLn.Addr().String(), httpsAddr: httpsLn.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Serve(ctx, httpLn, httpsLn) }()
	h.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("the proxy's Serve did not return after its context ended")
		}
	})
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

// transport reaches the proxy whatever the URL's host: port 80 URLs
// (http) go to its HTTP listener, others to its HTTPS one.
func (h *harness) transport(roots *x509.CertPool) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, port, _ := net.SplitHostPort(addr); port == "80" {
				return d.DialContext(ctx, network, h.httpAddr)
			}
			return d.DialContext(ctx, network, h.httpsAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
}

func (h *harness) client(roots *x509.CertPool) *http.Client {
	tr := h.transport(roots)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// get requests url and returns the status, the backend's echo (if it
// answered) and the body.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (int, *echo, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.Header.Get("Content-Type") == "application/json" {
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		return resp.StatusCode, &e, string(body)
	}
	return resp.StatusCode, nil, string(body)
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedAddr is an endpoint on 127.0.0.1 nobody listens on.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
