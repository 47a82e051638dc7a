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
// error.
func (p *Proxy) Serve(ctx context.Context, httpLn, httpsLn net.Listener) error {
	if httpLn == nil && httpsLn == nil {
		return errors.New("ingress: no listener to serve")
	}
	// Requests' contexts outlive ctx until the grace period is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	newServer := func() *http.Server {
		return &http.Server{
			Handler:           p.Handler(),
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          p.errLog,
			BaseContext:       func(net.Listener) context.Context { return base },
		}
	}
	var servers []*http.Server
	errc := make(chan error, 2)
	if httpLn != nil {
		s := newServer()
		servers = append(servers, s)
		go func() { errc <- s.Serve(httpLn) }()
	}
	if httpsLn != nil {
		s := newServer()
		s.TLSConfig = p.TLSConfig()
		servers = append(servers, s)
		go func() { errc <- s.ServeTLS(httpsLn, "", "") }()
	}
	running := len(servers)
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
	for _, s := range servers {
		wg.Go(func() { s.Shutdown(shutdownCtx) }) //nolint:errcheck // Close follows
	}
	wg.Wait()
	cancelBase() // ends upgraded connections, which Shutdown does not track
	for _, s := range servers {
		s.Close() //nolint:errcheck // only listener errors, already reported
	}
	for ; running > 0; running-- {
		if e := <-errc; err == nil && !errors.Is(e, http.ErrServerClosed) {
			err = fmt.Errorf("ingress: %w", e)
		}
	}
	return err
}
