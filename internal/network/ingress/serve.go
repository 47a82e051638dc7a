package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server settings.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// shutdownGrace is how long requests in flight may finish once Serve's
	// context ends; upgraded connections (WebSocket) are closed after it.
	shutdownGrace = 5 * time.Second
)

var (
	errNoSNI    = errors.New("ingress: client sent no server name, and there is no default certificate")
	errStarting = errors.New("ingress: starting, no certificates yet")
)

// TLSConfig returns a TLS configuration for the HTTPS side: the
// certificate is chosen by SNI from the current table (exact host, then
// wildcard), and a name without one fails the handshake. Each call
// returns a new Config.
func (p *Proxy) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: p.getCertificate,
	}
}

func (p *Proxy) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return nil, errNoSNI
	}
	t := p.table.Load()
	if t == nil {
		return nil, errStarting
	}
	if c := t.certificate(normalizeHost(hello.ServerName)); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("ingress: no certificate for %q", hello.ServerName)
}

// Serve serves plain HTTP on httpLn and HTTPS (HTTP/2 and HTTP/1.1) on
// httpsLn, either of which may be nil, until ctx ends; then it stops
// accepting, lets requests in flight finish for a few seconds and closes
// what remains. It returns nil after ctx ends, else the first server
// error. HTTP/1.1 takes the fast path (front.go), the rest net/http.
func (p *Proxy) Serve(ctx context.Context, httpLn, httpsLn net.Listener) error {
	if httpLn == nil && httpsLn == nil {
		return errors.New("ingress: no listener to serve")
	}
	// Requests' contexts outlive ctx until the grace period is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var fronts []*front
	if httpLn != nil {
		fronts = append(fronts, p.newFront(base, httpLn, nil))
	}
	if httpsLn != nil {
		fronts = append(fronts, p.newFront(base, httpsLn, p.TLSConfig()))
	}
	errc := make(chan error, 2*len(fronts))
	for _, f := range fronts {
		go func() { errc <- f.serve() }()
		go func() { errc <- f.fallback.Serve(f.handoff) }()
	}
	running := 2 * len(fronts)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		running--
		err = fmt.Errorf("ingress: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range fronts {
		wg.Go(func() { f.stop(shutdownCtx) })
	}
	wg.Wait()
	cancelBase() // ends upgraded connections, which Shutdown does not track
	for _, f := range fronts {
		f.close()
	}
	p.upstreams.closeIdle()
	for ; running > 0; running-- {
		if e := <-errc; err == nil && e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = fmt.Errorf("ingress: %w", e)
		}
	}
	return err
}
