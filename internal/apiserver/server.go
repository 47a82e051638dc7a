// Package apiserver serves the Kubernetes-compatible HTTP API: routing,
// authentication, content negotiation, the REST verbs on every resource,
// watch streams, patches, tables, discovery and a small OpenAPI document.
// Kinds are handled generically through resources.Resource; objects live in
// storage.Store.
package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/version"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/satoken"
	"wharf.dev/wharf/internal/servicealloc"
	"wharf.dev/wharf/internal/storage"
)

// Config is what a Server needs.
type Config struct {
	Logger *slog.Logger
	Store  *storage.Store
	// Etcd is the client Store writes with; services' cluster IPs and
	// node ports are reserved through it (servicealloc.go). Nil: one
	// server only.
	Etcd     *clientv3.Client
	Registry *resources.Registry
	// Authenticate maps a request to a user; nil means anonymous (401).
	Authenticate Authenticator
	// ServiceAccountIssuer, when set, serves serviceaccounts/{name}/token
	// and authenticates the tokens it signs; APIAudiences are the
	// audiences those must carry (default: the issuer's name).
	ServiceAccountIssuer *satoken.Issuer
	APIAudiences         []string
	// Metrics is where the server registers its metrics; nil: a new registry.
	Metrics *prometheus.Registry
	// Admission adds cross-object defaults and checks (pods' service
	// account and tolerations, services' cluster IPs, namespace lifecycle).
	Admission AdmissionConfig
	// ExternalAddress is the host:port clients use, for discovery.
	ExternalAddress string
	// Version is reported on /version.
	Version version.Info
	// Connect serves pods' log, exec, attach and portforward; nil: 501.
	Connect ConnectFunc
	// ResourceMetrics serves metrics.k8s.io (kubectl top, the HPA); nil: 503.
	ResourceMetrics ResourceMetricsSource
	// Authorize enforces RBAC and the Node authorizer on every API
	// request; false lets every authenticated user do anything.
	Authorize bool
	// NodeAccess widens what nodes' agents may read beyond their pods'
	// objects (Wharf's agents read the heartbeat key and TLS secrets).
	NodeAccess []authz.NodeOption
	// Routes are extra HTTP handlers served beside the API (the image
	// registry, the agents' join endpoint).
	Routes []Route
}

// Route is an extra handler on a path pattern (http.ServeMux syntax).
type Route struct {
	Pattern string
	Handler http.Handler
	// Public routes need no authentication (e.g. the CA, which joining
	// agents check against the hash in their join token).
	Public bool
}

// Server is the HTTP API.
type Server struct {
	log     *slog.Logger
	store   *storage.Store
	reg     *resources.Registry
	codecs  serializer.CodecFactory
	cfg     Config
	metrics *metrics
	mux     *http.ServeMux
	ready   func() error
	openapi openAPIDocs
	fields  *fieldManagers
	// alloc reserves services' cluster IPs and node ports in etcd
	// (servicealloc.go); without it (no Config.Etcd) svcMu serialises
	// service writes, which is safe with one server only.
	alloc *servicealloc.Allocator
	svcMu sync.Mutex
	// public are the paths served without authentication.
	public map[string]bool
	// routePatterns are cfg.Routes' patterns: those authorize their callers themselves.
	routePatterns map[string]bool
	// authz authorizes requests; nil lets every authenticated user do anything.
	authz *authorization
	// authenticate is cfg.Authenticate, then service account tokens.
	authenticate Authenticator
}

// New returns a server; Handler serves it.
func New(cfg Config) *Server {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	s := &Server{
		log:   cfg.Logger,
		store: cfg.Store,
		reg:   cfg.Registry,
		// Streaming collection encoding writes lists item by item instead
		// of building the whole body in memory.
		codecs: serializer.NewCodecFactory(cfg.Registry.Scheme, serializer.EnablePretty,
			serializer.WithStreamingCollectionEncodingToJSON(), serializer.WithStreamingCollectionEncodingToProtobuf()),
		cfg:     cfg,
		metrics: newMetrics(cfg.Metrics),
		mux:     http.NewServeMux(),
		public:  map[string]bool{"/healthz": true, "/livez": true, "/readyz": true},
		fields:  newFieldManagers(cfg.Registry),

		routePatterns: map[string]bool{},
	}
	if cfg.Etcd != nil {
		s.alloc = servicealloc.New(cfg.Etcd, cfg.Logger.With("component", "servicealloc"))
	}
	if cfg.Authorize {
		s.authz = s.newAuthorization(cfg.NodeAccess...)
	}
	s.authenticate = cfg.Authenticate
	if cfg.ServiceAccountIssuer != nil {
		s.authenticate = Authenticators(cfg.Authenticate, s.authenticateServiceAccount)
	}
	s.routes()
	return s
}

// Run keeps what the server derives from stored objects up to date (the
// authorizer's view of roles and bindings, the custom resources served)
// until ctx ends.
func (s *Server) Run(ctx context.Context) {
	s.watchPolicy(ctx)
	if _, ok := s.reg.Get(apiextv1.SchemeGroupVersion.WithResource("customresourcedefinitions")); ok {
		s.runDefinitions(ctx)
	}
}

// routed: r is served by one of cfg.Routes.
func (s *Server) routed(r *http.Request) bool {
	_, pattern := s.mux.Handler(r)
	return s.routePatterns[pattern]
}

// SetReadiness installs the check behind /readyz (e.g. controllers started).
func (s *Server) SetReadiness(check func() error) { s.ready = check }

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler { return s.withAuth(s.mux) }

func (s *Server) routes() {
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	s.mux.HandleFunc("/healthz", ok)
	s.mux.HandleFunc("/livez", ok)
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.ready != nil {
			if err := s.ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ok"))
	})
	s.mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.cfg.Version) })
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}))
	// Profiles for operators (authenticated like everything else), as
	// Kubernetes' --profiling offers.
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("/api", s.serveLegacyDiscovery)
	s.mux.HandleFunc("/apis", s.serveGroupDiscovery)
	s.mux.HandleFunc("/openapi/v3", s.serveOpenAPIIndex)
	s.mux.HandleFunc("/openapi/v3/", s.serveOpenAPIGroup)
	s.mux.HandleFunc("/openapi/v2", s.serveOpenAPIV2)
	s.mux.HandleFunc("/api/", s.serveAPI)
	s.mux.HandleFunc("/apis/", s.serveAPI)
	for _, r := range s.cfg.Routes {
		s.mux.Handle(r.Pattern, r.Handler)
		s.routePatterns[r.Pattern] = true
		if r.Public {
			s.public[r.Pattern] = true
		}
	}
}

// serveAPI serves resource URLs and group-version discovery.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	gv, parts, ok := parsePath(r.URL.Path)
	if ok && len(parts) == 0 {
		s.serveResourceList(rw, r, gv)
		return
	}
	if segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); len(segs) == 2 && segs[0] == "apis" {
		s.serveGroup(rw, r, segs[1])
		return
	}
	req, err := s.resolve(r)
	if err != nil {
		s.writeError(rw, r, err, nil)
		return
	}
	ctx := r.Context()
	s.handle(ctx, rw, r, req)
	resource := req.gvr.Resource
	if req.subresource != "" {
		resource += "/" + req.subresource
	}
	s.metrics.observe(req.verb, resource, rw.code, time.Since(start))
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("request", "verb", req.verb, "path", r.URL.Path, "code", rw.code, "duration", time.Since(start))
	}
}

func (s *Server) handle(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) {
	var err error
	defer func() {
		// A bug in one request must not take the connection (or, with
		// HTTP/2, every request sharing it) down: answer 500 and log it.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			s.writeError(w, r, fmt.Errorf("internal error: %v", p), req)
		}
	}()
	switch req.subresource {
	case "":
		err = s.handleMain(ctx, w, r, req)
	case "status":
		err = s.handleStatus(ctx, w, r, req)
	case "scale":
		err = s.handleScale(ctx, w, r, req)
	case "binding":
		err = s.handleBinding(ctx, w, r, req)
	case "eviction":
		err = s.handleEviction(ctx, w, r, req)
	case "finalize":
		err = s.handleFinalize(ctx, w, r, req)
	case "token":
		err = s.handleToken(ctx, w, r, req)
	default:
		if _, ok := req.res.Subresource(req.subresource); ok {
			err = s.handleSubresource(ctx, w, r, req)
			break
		}
		err = s.handleConnect(ctx, w, r, req)
	}
	if err != nil {
		s.writeError(w, r, err, req)
	}
}

func (s *Server) handleMain(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.res.ReadOnly {
		return s.serveResourceMetrics(ctx, w, r, req)
	}
	if req.res.CreateOnly {
		if req.verb != "create" || req.name != "" {
			return errMethod(r.Method, req)
		}
		return s.review(ctx, w, r, req)
	}
	switch req.verb {
	case "get":
		return s.get(ctx, w, r, req)
	case "list":
		return s.list(ctx, w, r, req)
	case "watch":
		return s.watch(ctx, w, r, req)
	case "create":
		if req.name != "" {
			return errMethod(r.Method, req)
		}
		return s.create(ctx, w, r, req)
	case "update":
		return s.update(ctx, w, r, req, mainWrite)
	case "patch":
		return s.patch(ctx, w, r, req, mainWrite)
	case "delete":
		return s.delete(ctx, w, r, req)
	case "deletecollection":
		return s.deleteCollection(ctx, w, r, req)
	}
	return errMethod(r.Method, req)
}

// statusWriter records the response code for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (exec upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
