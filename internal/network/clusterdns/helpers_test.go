package clusterdns

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeWriter is a dns.ResponseWriter that keeps what is written, as the
// client would read it off the wire.
type fakeWriter struct {
	tcp  bool
	mu   sync.Mutex
	msgs []*dns.Msg
	raw  [][]byte
	errs []error
}

var (
	fakeUDPAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	fakeTCPAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
)

func (w *fakeWriter) LocalAddr() net.Addr { return fakeUDPAddr }
func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return fakeTCPAddr
	}
	return fakeUDPAddr
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		w.mu.Lock()
		w.errs = append(w.errs, err)
		w.mu.Unlock()
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *fakeWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	err := m.Unpack(b)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.raw = append(w.raw, append([]byte(nil), b...))
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("unpacking the answer: %w", err))
		return len(b), nil
	}
	w.msgs = append(w.msgs, m)
	return len(b), nil
}

func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// discardWriter is the cheapest ResponseWriter, for benchmarks.
type discardWriter struct{ n int }

func (w *discardWriter) LocalAddr() net.Addr         { return fakeUDPAddr }
func (w *discardWriter) RemoteAddr() net.Addr        { return fakeUDPAddr }
func (w *discardWriter) WriteMsg(m *dns.Msg) error   { _, err := m.Pack(); w.n++; return err }
func (w *discardWriter) Write(b []byte) (int, error) { w.n++; return len(b), nil }
func (w *discardWriter) Close() error                { return nil }
func (w *discardWriter) TsigStatus() error           { return nil }
func (w *discardWriter) TsigTimersOnly(bool)         {}
func (w *discardWriter) Hijack()                     {}

// exchange asks s one question through a fakeWriter.
func exchange(t testing.TB, s *Server, r *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	w := &fakeWriter{tcp: tcp}
	s.ServeDNS(w, r)
	if len(w.errs) > 0 {
		t.Fatalf("%v: %v", r.Question, w.errs)
	}
	if len(w.msgs) != 1 {
		t.Fatalf("%v: %d answers, want 1", r.Question, len(w.msgs))
	}
	m := w.msgs[0]
	if m.Id != r.Id {
		t.Errorf("%v: answer ID %d, want %d", r.Question, m.Id, r.Id)
	}
	if len(r.Question) == 1 && (len(m.Question) != 1 || m.Question[0] != r.Question[0]) {
		t.Errorf("answer's question %v, want %v", m.Question, r.Question)
	}
	return m
}

func ask(t testing.TB, s *Server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	return exchange(t, s, r, false)
}

func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type svcOpt func(*corev1.Service)

func svc(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	s.Spec.Type = corev1.ServiceTypeClusterIP
	for _, o := range opts {
		o(s)
	}
	return s
}

func clusterIPs(ips ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips }
}

func headless(s *corev1.Service) {
	s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{"None"}
}

func publishNotReady(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }

func externalName(name string) svcOpt {
	return func(s *corev1.Service) { s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, name }
}

func ports(ps ...corev1.ServicePort) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = ps }
}

type ep struct {
	addr     string
	hostname string
	notReady bool
}

func slice(ns, name, service string, eps []ep, ps ...discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ps,
	}
	for _, e := range eps {
		if strings.Contains(e.addr, ":") {
			es.AddressType = discoveryv1.AddressTypeIPv6
		}
		x := discoveryv1.Endpoint{Addresses: []string{e.addr}}
		if e.hostname != "" {
			x.Hostname = &e.hostname
		}
		if e.notReady {
			f := false
			x.Conditions.Ready = &f
		}
		es.Endpoints = append(es.Endpoints, x)
	}
	return es
}

func epPort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

// result is the part of an answer the tests compare.
type result struct {
	Rcode  string
	AA, TC bool
	Answer []string
	Ns     []string // owner and type only: the SOA serial is a time
	Extra  []string
}

func resultOf(m *dns.Msg) result {
	r := result{Rcode: dns.RcodeToString[m.Rcode], AA: m.Authoritative, TC: m.Truncated}
	for _, rr := range m.Answer {
		r.Answer = append(r.Answer, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	for _, rr := range m.Ns {
		r.Ns = append(r.Ns, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
	}
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			r.Extra = append(r.Extra, strings.ReplaceAll(rr.String(), "\t", " "))
		}
	}
	return r
}
