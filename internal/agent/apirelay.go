package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiRelay lets pods reach an API server that listens on loopback only
// (`wharf up`'s, on this machine): pods cannot be routed to 127.0.0.1
// without route_localnet, a known hole (CVE-2020-8558). The relay listens
// on the pod network's gateway, copies each connection to the server (TLS
// passes through: the server's certificate names the kubernetes service's
// cluster IP), and the node's service proxy sends the kubernetes service
// there, through an endpoint slice of its own that no API object holds.
// Servers with a routable address publish their endpoint themselves.
type apiRelay struct {
	target string
	log    *slog.Logger
	local  func(*discoveryv1.EndpointSlice)

	mu sync.Mutex
	ln net.Listener
}

// newAPIRelay returns the relay to serverURL's host, or nil when that is
// not a loopback address.
func newAPIRelay(serverURL string, log *slog.Logger, local func(*discoveryv1.EndpointSlice)) *apiRelay {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil || !a.IsLoopback() || !a.Is4() {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return &apiRelay{target: net.JoinHostPort(a.String(), port), log: log, local: local}
}

// Listen starts relaying on the gateway (again only if it changed) and
// points the kubernetes service at it.
func (r *apiRelay) Listen(gw netip.Addr) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		if netip.MustParseAddrPort(r.ln.Addr().String()).Addr() == gw {
			return nil
		}
		r.ln.Close()
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort(gw.String(), "0"))
	if err != nil {
		return err
	}
	r.ln = ln
	go r.serve(ln)
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	r.local(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "kubernetes-node-relay", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{gw.String()}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: new("https"), Port: &port, Protocol: new(corev1.ProtocolTCP)}},
	})
	r.log.Info("pods reach the API through this node", "relay", ln.Addr().String(), "server", r.target)
	return nil
}

// Run stops the relay when ctx ends.
func (r *apiRelay) Run(ctx context.Context) error {
	<-ctx.Done()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
	}
	return nil
}

func (r *apiRelay) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Warn("API relay stopped", "err", err)
			}
			return
		}
		go r.relay(c)
	}
}

func (r *apiRelay) relay(c net.Conn) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		r.log.Debug("API relay: server unreachable", "err", err)
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(s, c)
		s.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, s)
	c.(*net.TCPConn).CloseWrite()
	<-done
}
