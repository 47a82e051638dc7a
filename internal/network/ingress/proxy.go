package ingress

import (
	"log"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultController is the IngressClass spec.controller served by default.
const DefaultController = "wharf.dev/ingress"

// debounce is how long a build waits after a change for more changes.
const debounce = 50 * time.Millisecond

// Config says how a Proxy runs.
type Config struct {
	// Controller is the IngressClass spec.controller whose classes'
	// Ingresses are served; DefaultController if empty.
	Controller string
	// HTTPSPort is the port clients reach HTTPS on, named in redirects
	// (annotation wharf.dev/ssl-redirect) unless 0 or 443.
	HTTPSPort int
	// OnBuild, if set, is called after each new routing table is in
	// (Served and Problems then tell about it).
	OnBuild func()
	Logger  *slog.Logger
}

// Proxy is the ingress data plane of a node. Its Update and Delete
// methods may be called from several goroutines (the informers').
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	errLog *log.Logger     // for net/http's own messages, at debug level
	h1     *http.Transport // net/http's path to endpoints
	h2c    *http.Transport
	// upstreams are the fast path's connections to endpoints.
	upstreams *upstreams
	// Requests served by the fast path, connections handed to net/http.
	fastRequests, handoffs atomic.Uint64

	mu        sync.Mutex // guards what the informers said, below
	ingresses map[types.NamespacedName]*ingress
	classes   map[string]*class // ours only
	services  map[types.NamespacedName]*service
	slices    map[types.NamespacedName]*slice
	secrets   map[types.NamespacedName]*secret
	started   bool        // Sync was called: changes schedule builds
	timer     *time.Timer // pending build; nil: none

	buildMu sync.Mutex // one build at a time
	table   atomic.Pointer[table]
}

// New returns a Proxy. It serves nothing (503) until the first Sync.
func New(cfg Config) *Proxy {
	if cfg.Controller == "" {
		cfg.Controller = DefaultController
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proxy{
		cfg:       cfg,
		log:       cfg.Logger,
		errLog:    slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		h1:        newTransport(false),
		h2c:       newTransport(true),
		upstreams: newUpstreams(),
		ingresses: map[types.NamespacedName]*ingress{},
		classes:   map[string]*class{},
		services:  map[types.NamespacedName]*service{},
		slices:    map[types.NamespacedName]*slice{},
		secrets:   map[types.NamespacedName]*secret{},
	}
}

// UpdateIngress adds or changes an Ingress.
func (p *Proxy) UpdateIngress(in *networkingv1.Ingress) {
	update(p, p.ingresses, types.NamespacedName{Namespace: in.Namespace, Name: in.Name}, reduceIngress(in))
}

// DeleteIngress forgets an Ingress.
func (p *Proxy) DeleteIngress(namespace, name string) {
	remove(p, p.ingresses, types.NamespacedName{Namespace: namespace, Name: name})
}

// UpdateIngressClass adds or changes an IngressClass; only those of
// Config.Controller are kept.
func (p *Proxy) UpdateIngressClass(c *networkingv1.IngressClass) {
	if c.Spec.Controller != p.cfg.Controller {
		remove(p, p.classes, c.Name) // it may have been ours
		return
	}
	update(p, p.classes, c.Name, &class{isDefault: c.Annotations[annotationDefaultClass] == "true"})
}

// DeleteIngressClass forgets an IngressClass.
func (p *Proxy) DeleteIngressClass(name string) {
	remove(p, p.classes, name)
}

// UpdateService adds or changes a Service (services.Sink).
func (p *Proxy) UpdateService(svc *corev1.Service) {
	update(p, p.services, types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, reduceService(svc))
}

// DeleteService forgets a Service (services.Sink).
func (p *Proxy) DeleteService(namespace, name string) {
	remove(p, p.services, types.NamespacedName{Namespace: namespace, Name: name})
}

// UpdateEndpointSlice adds or changes an EndpointSlice (services.Sink);
// it belongs to the Service its kubernetes.io/service-name label names.
func (p *Proxy) UpdateEndpointSlice(es *discoveryv1.EndpointSlice) {
	key := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	if s := reduceSlice(es); s != nil {
		update(p, p.slices, key, s)
	} else {
		remove(p, p.slices, key)
	}
}

// DeleteEndpointSlice forgets an EndpointSlice (services.Sink).
func (p *Proxy) DeleteEndpointSlice(namespace, name string) {
	remove(p, p.slices, types.NamespacedName{Namespace: namespace, Name: name})
}

// UpdateSecret adds or changes a Secret. A TLS Secret's certificate is
// parsed here, once per resourceVersion; of other Secrets only the type
// is kept.
func (p *Proxy) UpdateSecret(s *corev1.Secret) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	p.mu.Lock()
	old := p.secrets[key]
	p.mu.Unlock()
	if old != nil && old.rv != "" && old.rv == s.ResourceVersion {
		return // a resync
	}
	reduced := reduceSecret(s) // parsing outside the lock
	p.mu.Lock()
	defer p.mu.Unlock()
	p.secrets[key] = reduced
	p.changed()
}

// DeleteSecret forgets a Secret.
func (p *Proxy) DeleteSecret(namespace, name string) {
	remove(p, p.secrets, types.NamespacedName{Namespace: namespace, Name: name})
}

// update stores v under k unless it equals what is there.
func update[K comparable, V any](p *Proxy, m map[K]*V, k K, v *V) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := m[k]; ok && reflect.DeepEqual(old, v) {
		return
	}
	m[k] = v
	p.changed()
}

func remove[K comparable, V any](p *Proxy, m map[K]*V, k K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := m[k]; ok {
		delete(m, k)
		p.changed()
	}
}

// changed schedules a build, once Sync has been called. Must be called
// with p.mu held.
func (p *Proxy) changed() {
	if p.started && p.timer == nil {
		p.timer = time.AfterFunc(debounce, func() {
			p.mu.Lock()
			p.timer = nil
			p.mu.Unlock()
			p.Sync()
		})
	}
}

// Sync builds the routing table from what the proxy was given and swaps
// it in; from then on, changes rebuild it after a short delay on their
// own. The caller calls it once its informers have synced, and may call
// it again for an immediate build.
func (p *Proxy) Sync() {
	p.buildMu.Lock()
	defer p.buildMu.Unlock()
	p.mu.Lock()
	s := snapshot{
		ingresses: maps.Clone(p.ingresses),
		classes:   maps.Clone(p.classes),
		services:  maps.Clone(p.services),
		slices:    maps.Clone(p.slices),
		secrets:   maps.Clone(p.secrets),
	}
	p.started = true
	p.mu.Unlock()
	start := time.Now()
	t := p.build(s)
	old := p.table.Swap(t)
	p.logProblems(old, t)
	p.log.Debug("ingress: routing table built", "ingresses", len(s.ingresses), "hosts", len(t.hosts)+len(t.wildcards), "took", time.Since(start))
	if p.cfg.OnBuild != nil {
		p.cfg.OnBuild()
	}
}

// Problems returns, per Ingress of ours, the problems found by the last
// build, in a deterministic order; Ingresses without problems are absent.
func (p *Proxy) Problems() map[types.NamespacedName][]string {
	t := p.table.Load()
	if t == nil {
		return nil
	}
	out := make(map[types.NamespacedName][]string, len(t.problems))
	for k, v := range t.problems {
		out[k] = slices.Clone(v)
	}
	return out
}

// Served returns the Ingresses of ours as of the last build, oldest first.
func (p *Proxy) Served() []types.NamespacedName {
	if t := p.table.Load(); t != nil {
		return slices.Clone(t.served)
	}
	return nil
}

// logProblems logs the problems that are new in t.
func (p *Proxy) logProblems(old, t *table) {
	for k, probs := range t.problems {
		for _, msg := range probs {
			if old == nil || !slices.Contains(old.problems[k], msg) {
				p.log.Warn("ingress: "+msg, "ingress", k.String())
			}
		}
	}
}
