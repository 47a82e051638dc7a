package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

var serveCmd = command{
	name:    "serve",
	summary: "HTTP server: / answers JSON (hostname, pod IP, headers, message); /healthz, /readyz, /exit?code=N, /ws (WebSocket echo)",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		port := fs.Int("port", 8080, "TCP port to listen on")
		message := fs.String("message", e.getenv("MESSAGE"), "message to include in answers (default $MESSAGE)")
		messageFile := fs.String("message-file", e.getenv("MESSAGE_FILE"), "file whose content is the message, read on every request, e.g. a mounted ConfigMap key (default $MESSAGE_FILE)")
		logRequests := fs.Bool("log-requests", true, "log a line per request (benchmarks turn it off: the log pipeline costs more CPU than the answer)")
		return func(ctx context.Context, _ []string) error {
			log := slog.New(slog.NewTextHandler(e.stdout, nil))
			s := newServer(log, podIP(e.getenv), *message, *messageFile)
			s.logEach = *logRequests
			return s.listenAndServe(ctx, fmt.Sprintf(":%d", *port))
		}
	},
}

// server is the HTTP test server. Readiness starts true and is toggled by
// POST /readyz, so tests can take a pod out of a service's endpoints.
type server struct {
	log         *slog.Logger
	hostname    string
	podIP       string
	message     string
	messageFile string
	logEach     bool // a line per request
	ready       atomic.Bool
	// exit receives the status asked for by /exit, once the answer is sent.
	exit chan int
}

func newServer(log *slog.Logger, podIP, message, messageFile string) *server {
	host, _ := os.Hostname()
	s := &server{log: log, hostname: host, podIP: podIP, message: message, messageFile: messageFile, logEach: true, exit: make(chan int, 1)}
	s.ready.Store(true)
	return s
}

func (s *server) listenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("serving", "addr", ln.Addr().String(), "podIP", s.podIP)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var result error
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case code := <-s.exit:
		result = exitCode(code)
	}
	// Shutdown waits for the /exit answer to reach its client.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return result
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serveRoot)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", s.serveReadyz)
	mux.HandleFunc("/exit", s.serveExit)
	// A WebSocket echo, of any origin (a nil Handshake checks none).
	mux.Handle("/ws", websocket.Server{Handler: func(c *websocket.Conn) { io.Copy(c, c) }})
	if !s.logEach {
		return mux
	}
	return s.logRequests(mux)
}

// answer is what / returns.
type answer struct {
	Hostname     string      `json:"hostname"`
	PodIP        string      `json:"podIP"`
	Method       string      `json:"method"`
	Path         string      `json:"path"`
	RemoteAddr   string      `json:"remoteAddr"`
	Headers      http.Header `json:"headers"`
	Message      string      `json:"message,omitempty"`
	MessageError string      `json:"messageError,omitempty"`
}

func (s *server) serveRoot(w http.ResponseWriter, r *http.Request) {
	a := answer{
		Hostname: s.hostname, PodIP: s.podIP, Method: r.Method, Path: r.URL.Path,
		RemoteAddr: r.RemoteAddr, Headers: r.Header, Message: s.message,
	}
	if s.messageFile != "" {
		// Read on every request: a mounted ConfigMap changes under us.
		if b, err := os.ReadFile(s.messageFile); err != nil {
			a.MessageError = err.Error()
		} else {
			a.Message = strings.TrimRight(string(b), "\n")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(a)
}

func (s *server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		ready, err := strconv.ParseBool(r.URL.Query().Get("ready"))
		if err != nil {
			http.Error(w, "ready must be true or false", http.StatusBadRequest)
			return
		}
		s.ready.Store(ready)
		fmt.Fprintf(w, "ready=%t\n", ready)
		return
	default:
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *server) serveExit(w http.ResponseWriter, r *http.Request) {
	code, err := parseExitCode(r.URL.Query().Get("code"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "exiting with status %d\n", code)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case s.exit <- code:
	default: // an exit is already under way
	}
}

// parseExitCode accepts a process exit status: empty means 0.
func parseExitCode(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("exit code %q: want an integer from 0 to 255", s)
	}
	return n, nil
}

// logRequests logs one line per request, for `kubectl logs`.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.Info("request", "method", r.Method, "path", r.URL.RequestURI(), "status", sw.code,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection (Hijack for
// the WebSocket echo).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands the connection over (WebSocket): logged as 101.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.code = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// podIP is $POD_IP (the downward API) or else the first non-loopback
// address, IPv4 first.
func podIP(getenv func(string) string) string {
	if ip := getenv("POD_IP"); ip != "" {
		return ip
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	return v6
}
