// Package services watches a cluster's Services and EndpointSlices for a
// node agent: it feeds them to the node's service proxy and DNS server
// (its Sinks) as they change, runs the proxy's sync after each burst of
// changes (never a periodic full resync: the first sync after start is
// the full one), and lists the services for the pods' environment.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Sink takes the cluster's services and endpoint slices as they change.
// Calls come from one goroutine per kind; a Sink copies nothing it keeps
// from the objects, which are the informer's and must not be changed.
type Sink interface {
	UpdateService(svc *corev1.Service)
	DeleteService(namespace, name string)
	UpdateEndpointSlice(es *discoveryv1.EndpointSlice)
	DeleteEndpointSlice(namespace, name string)
}

// Config says how a Watcher runs.
type Config struct {
	Client kubernetes.Interface
	Sinks  []Sink
	// Sync, if set, writes what the sinks were given (the proxy's rules);
	// it runs once the first lists are in, then after every change, a
	// burst of changes sharing one run. A failed run is retried.
	Sync   func(ctx context.Context) error
	Logger *slog.Logger
}

// Watcher is the node's watch of services and endpoint slices.
type Watcher struct {
	cfg    Config
	log    *slog.Logger
	dirty  chan struct{}
	synced chan struct{} // closed once the first lists are in

	mu     sync.Mutex
	lister listersv1.ServiceLister
}

// New returns a Watcher; Run runs it.
func New(cfg Config) *Watcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: cfg.Logger, dirty: make(chan struct{}, 1), synced: make(chan struct{})}
}

// Run watches until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	if w.cfg.Client == nil {
		return errors.New("services: Config needs Client")
	}
	factory := informers.NewSharedInformerFactory(w.cfg.Client, 0)
	svcs := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	// The registrations' HasSynced: the first lists have reached the sinks.
	svcReg, err := svcs.Informer().AddEventHandler(handlers(w, func(s Sink, obj any) { s.UpdateService(obj.(*corev1.Service)) },
		func(s Sink, ns, name string) { s.DeleteService(ns, name) }))
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	sliceReg, err := slices.Informer().AddEventHandler(handlers(w, func(s Sink, obj any) { s.UpdateEndpointSlice(obj.(*discoveryv1.EndpointSlice)) },
		func(s Sink, ns, name string) { s.DeleteEndpointSlice(ns, name) }))
	if err != nil {
		return fmt.Errorf("endpoint slices: %w", err)
	}
	w.mu.Lock()
	w.lister = svcs.Lister()
	w.mu.Unlock()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcReg.HasSynced, sliceReg.HasSynced) {
		return nil
	}
	close(w.synced)
	w.log.Info("services and endpoint slices read")
	w.syncLoop(ctx)
	return nil
}

// handlers passes an informer's events to every sink and marks the rules
// dirty.
func handlers(w *Watcher, update func(Sink, any), del func(s Sink, ns, name string)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.each(func(s Sink) { update(s, obj) }) },
		UpdateFunc: func(_, obj any) { w.each(func(s Sink) { update(s, obj) }) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			key, err := cache.MetaNamespaceKeyFunc(obj)
			if err != nil {
				return
			}
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			w.each(func(s Sink) { del(s, ns, name) })
		},
	}
}

// Local hands the sinks an endpoint slice no API object holds (the node's
// own way to a service, such as its API relay).
func (w *Watcher) Local(es *discoveryv1.EndpointSlice) {
	w.each(func(s Sink) { s.UpdateEndpointSlice(es) })
}

func (w *Watcher) each(fn func(Sink)) {
	for _, s := range w.cfg.Sinks {
		fn(s)
	}
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// Retry waits after a failed sync.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 30 * time.Second
)

// syncLoop runs Sync at once, then whenever something changed.
func (w *Watcher) syncLoop(ctx context.Context) {
	if w.cfg.Sync == nil {
		<-ctx.Done()
		return
	}
	wait := retryInitial
	var retry <-chan time.Time // nil: no retry pending
	for {
		start := time.Now()
		if err := w.cfg.Sync(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("syncing the service rules; retrying", "err", err, "in", wait)
			retry = time.After(wait)
			wait = min(2*wait, retryMax)
		} else {
			w.log.Debug("service rules synced", "took", time.Since(start))
			retry, wait = nil, retryInitial
		}
		select {
		case <-ctx.Done():
			return
		case <-w.dirty:
		case <-retry:
		}
	}
}

// Synced is closed once the first lists have reached the sinks.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Services lists every service, once they have been read (package pods'
// ServiceSource).
func (w *Watcher) Services(ctx context.Context) ([]*corev1.Service, error) {
	select {
	case <-w.synced:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w.mu.Lock()
	l := w.lister
	w.mu.Unlock()
	return l.List(labels.Everything())
}
