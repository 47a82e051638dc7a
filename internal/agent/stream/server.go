// Package stream is the agent's HTTPS server, what the kubelet's server is
// to kube-apiserver: the API server proxies pods' logs, exec, attach and
// port forwarding here (docs/agent.md), and scrapes its resource usage
// (/stats/summary, package stats). Logs are read from the CRI log
// files; exec, attach and port forwarding go through CRI to the runtime's
// own streaming server, relayed by the agent. Clients must present a
// certificate signed by the cluster CA.
package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults.
const (
	// DefaultListen is the kubelet's port.
	DefaultListen = "0.0.0.0:10250"
	// DefaultLogPoll is how often a followed log is checked for growth.
	DefaultLogPoll = 200 * time.Millisecond
	// DefaultIdleTimeout ends an exec or port forward with no traffic, as
	// the kubelet's streaming-connection-idle-timeout (4 h).
	DefaultIdleTimeout = 4 * time.Hour
	// streamCreationTimeout bounds the SPDY stream set-up.
	streamCreationTimeout = 30 * time.Second
)

// Config is what a Server needs.
type Config struct {
	Runtime Runtime
	Logger  *slog.Logger
	// Cert is the agent's serving certificate; ClientCAs verify clients.
	Cert        tls.Certificate
	ClientCAs   *x509.CertPool
	LogPoll     time.Duration
	IdleTimeout time.Duration
	// Stats serves /stats/summary; nil: 404.
	Stats StatsSource
}

// Server serves logs and streams of this node's containers.
type Server struct {
	cfg       Config
	log       *slog.Logger
	streamer  *criStreamer
	forwarder *criForwarder
	mux       *http.ServeMux
}

// New returns a server; Run serves it.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LogPoll <= 0 {
		cfg.LogPoll = DefaultLogPoll
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(),
		streamer:  &criStreamer{rt: cfg.Runtime},
		forwarder: &criForwarder{rt: cfg.Runtime},
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	s.mux.HandleFunc("GET /stats/summary", s.serveSummary)
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveLogs)
	for _, m := range []string{"GET", "POST"} {
		// WebSocket clients upgrade a GET, SPDY clients a POST.
		s.mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.serveExec)
		s.mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.serveAttach)
		s.mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.servePortForward)
	}
	return s
}

// Handler serves the routes without TLS (tests; Run adds TLS).
func (s *Server) Handler() http.Handler { return s.mux }

// TLSConfig requires clients to present a certificate from the cluster CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cfg.Cert},
		ClientCAs:    s.cfg.ClientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: exec and port forwarding upgrade the connection.
		NextProtos: []string{"http/1.1"},
	}
}

// Serve serves HTTPS on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		// Streams are long: close rather than wait for them.
		srv.Close()
	}()
	s.log.Info("serving logs and exec", "address", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("agent server: %w", err)
	}
	return nil
}
