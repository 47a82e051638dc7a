// Package registry is the cluster's image registry: an OCI distribution
// (Docker registry v2) HTTP API whose blobs and manifests live on disk,
// so it serves the same content after a restart; with WithShared, they
// live in storage every server of the cluster shares (etcd) and the disk
// is a cache (shared.go).
//
// Layout of the directory it is given:
//
//	blobs/sha256/<hex>                                  every blob and manifest, by digest
//	uploads/<id>                                        blobs being uploaded
//	repositories/<name>/_manifests/revisions/sha256/<hex>  manifest in repository (content: media type)
//	repositories/<name>/_manifests/tags/<tag>           tag (content: digest)
//
// With shared storage the repositories/ paths are kept there instead.
//
// Blobs are shared by every repository: a cluster has one set of users,
// and whoever may pull may pull anything, so a cross-repository mount of
// a blob that exists always succeeds. Nothing is garbage-collected:
// deleting a manifest or tag frees no blob.
//
// Authentication is the caller's (the API server in front of it);
// authorization is a function the caller passes, asked per request
// whether it may read or write.
package registry

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Authorizer says whether a request may proceed; write is true for every
// method but GET and HEAD.
type Authorizer func(r *http.Request, write bool) bool

// Registry is the HTTP handler of a registry stored in a directory.
type Registry struct {
	dir       string
	log       *slog.Logger
	authorize Authorizer
	realm     string
	service   string
	// uploads serialises requests on one upload; chunks must arrive in order.
	uploads sync.Map // id → *sync.Mutex
	// lastSweep is when abandoned uploads were last removed (Unix seconds).
	lastSweep atomic.Int64
	// shared, when set, holds tags, revisions and every blob (shared.go).
	shared Shared
	// fetching serialises copies of one blob from shared.
	fetching sync.Map // digest → *sync.Mutex
}

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger (default: discard).
func WithLogger(log *slog.Logger) Option { return func(r *Registry) { r.log = log } }

// WithAuthorizer sets who may read and write (default: everyone).
func WithAuthorizer(a Authorizer) Option { return func(r *Registry) { r.authorize = a } }

// WithChallenge sets the realm and service of the Bearer challenge sent
// with 401 answers. The default realm is this server's /v2/token: clients
// are expected to send their bearer token on every request (as containerd
// does with a hosts.toml header) rather than to fetch one.
func WithChallenge(realm, service string) Option {
	return func(r *Registry) { r.realm, r.service = realm, service }
}

// New returns a registry storing its data under dir, which it creates
// when first written to.
func New(dir string, opts ...Option) *Registry {
	r := &Registry{dir: dir, log: slog.New(slog.DiscardHandler), service: "wharf"}
	for _, o := range opts {
		o(r)
	}
	return r
}

// ServeHTTP serves the registry API; mount it at /v2/.
func (reg *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	sw.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, perr := parsePath(r.URL.Path)
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	var err error
	switch {
	case reg.authorize != nil && !reg.authorize(r, write):
		// Refused before looking at the path, so that strangers learn
		// nothing of what exists.
		sw.Header().Set("WWW-Authenticate", reg.challenge(r, rt, perr == nil, write))
		err = newError(http.StatusUnauthorized, codeUnauthorized, "authentication required")
	case perr != nil:
		err = perr
	default:
		err = reg.serve(sw, r, rt)
	}
	if err != nil {
		reg.writeError(sw, r, err)
	}
	reg.log.Debug("registry request", "method", r.Method, "path", r.URL.Path, "status", sw.code, "duration", time.Since(start))
}

func (reg *Registry) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	m := r.Method
	switch {
	case rt.kind == routeBase && (m == http.MethodGet || m == http.MethodHead):
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return nil
	case rt.kind == routeCatalog && m == http.MethodGet:
		return reg.serveCatalog(w, r)
	case rt.kind == routeTags && m == http.MethodGet:
		return reg.serveTags(w, r, rt)
	case rt.kind == routeManifest && (m == http.MethodGet || m == http.MethodHead):
		return reg.getManifest(w, r, rt)
	case rt.kind == routeManifest && m == http.MethodPut:
		return reg.putManifest(w, r, rt)
	case rt.kind == routeManifest && m == http.MethodDelete:
		return reg.deleteManifest(w, r, rt)
	case rt.kind == routeBlob && (m == http.MethodGet || m == http.MethodHead):
		return reg.getBlob(w, r, rt)
	case rt.kind == routeUpload && rt.id == "" && m == http.MethodPost:
		return reg.startUpload(w, r, rt)
	case rt.kind == routeUpload && rt.id != "":
		return reg.serveUpload(w, r, rt)
	}
	return newError(http.StatusMethodNotAllowed, codeUnsupported, "%s is not supported on %s", m, r.URL.Path)
}

// challenge is the WWW-Authenticate value of a refused request.
func (reg *Registry) challenge(r *http.Request, rt route, parsed, write bool) string {
	realm := reg.realm
	if realm == "" {
		scheme := "https"
		if r.TLS == nil {
			scheme = "http"
		}
		realm = scheme + "://" + r.Host + "/v2/token"
	}
	c := `Bearer realm="` + realm + `",service="` + reg.service + `"`
	if parsed && rt.name != "" {
		actions := "pull"
		if write {
			actions = "pull,push"
		}
		c += `,scope="repository:` + rt.name + ":" + actions + `"`
	}
	return c
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
