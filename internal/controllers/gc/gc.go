// Package gc is the garbage collector: it deletes objects whose owners (their
// metadata.ownerReferences) are gone, and carries out foreground and orphan
// deletion of owners, like Kubernetes' garbage collector controller.
//
// Every watched resource feeds a metadata-only informer into a graph of
// uid → {owners, dependents}. The graph only decides *what to look at*; every
// destructive decision is made on live objects read from the API server
// (the dependent, and each of its owners by name, checking the uid), so a
// stale or partial graph can delay collection but never cause a wrong delete.
// The graph is rebuilt from the informers on restart; owners found mid-deletion
// are picked up again because their first observation counts as a transition.
package gc

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Resource is one API resource the collector watches. Kind and Namespaced
// are needed to resolve ownerReferences (apiVersion+kind) to a resource and
// to know where the owner lives.
type Resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// ignored resources are never collected, like Kubernetes' default: events
// are many, short-lived, and served under two groups (one object, two
// graph entries).
var ignored = map[schema.GroupResource]bool{
	{Resource: "events"}:                         true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// Controller is the garbage collector.
type Controller struct {
	logger *slog.Logger
	client metadata.Interface

	// setMu serializes SetResources; mu guards what it changes, which
	// workers read (byKind) and Run starts and stops (watches, runCtx).
	setMu   sync.Mutex
	mu      sync.RWMutex
	byKind  map[schema.GroupKind]kindEntry
	watches map[schema.GroupVersionResource]*watch
	runCtx  context.Context // set while Run runs: watches start in it

	graph  *graph
	absent *absentCache
	queue  workqueue.TypedRateLimitingInterface[workItem]

	maxRetry    time.Duration
	syncTimeout time.Duration
}

// kindEntry resolves an ownerReference's kind: to the resource serving it,
// or to the last one that did.
type kindEntry struct {
	Resource
	served bool
}

// watch is the informer of one watched resource. Each has its own stop, so
// that a resource no longer served (a deleted custom resource definition)
// stops being listed: a shared informer factory cannot stop one informer.
type watch struct {
	res      Resource
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced
	cancel   context.CancelFunc // nil until started
	done     chan struct{}      // closed when the informer has stopped
}

// Option configures a Controller.
type Option func(*Controller)

// WithSyncTimeout bounds the wait for informers before collecting (default 60 s).
func WithSyncTimeout(d time.Duration) Option {
	return func(c *Controller) { c.syncTimeout = d }
}

// WithMaxRetryDelay caps the per-item back-off (default 60 s): the longest an
// item waits when its owner cannot be checked or is not observed yet.
func WithMaxRetryDelay(d time.Duration) Option {
	return func(c *Controller) { c.maxRetry = d }
}

// New builds the collector for resources; Run starts their informers, and
// SetResources changes them at any time.
func New(logger *slog.Logger, client metadata.Interface, resources []Resource, opts ...Option) *Controller {
	c := &Controller{
		logger:      logger.With("controller", "garbagecollector"),
		client:      client,
		byKind:      map[schema.GroupKind]kindEntry{},
		watches:     map[schema.GroupVersionResource]*watch{},
		graph:       newGraph(),
		absent:      newAbsentCache(4096),
		maxRetry:    60 * time.Second,
		syncTimeout: 60 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	// The back-off is capped well below client-go's default 1000 s: an item
	// requeued while its owner is unobserved should be rechecked soon.
	rl := workqueue.NewTypedItemExponentialFailureRateLimiter[workItem](10*time.Millisecond, c.maxRetry)
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[workItem]{Name: "garbagecollector"})
	c.SetResources(resources)
	return c
}

// SetResources makes resources the watched set, like Kubernetes' resyncMonitors
// after its periodic discovery: informers start for new resources and stop
// for removed ones, whose objects leave the graph (none can exist while the
// resource is not served).
//
// A removed resource's kind still resolves ownerReferences, to its last
// resource: an owner of a kind no longer served is then found absent by the
// live read (the server answers 404), so its dependents are collected. Kinds
// never served resolve to nothing and their owners count as alive; objects
// naming a kind that becomes served are checked again.
func (c *Controller) SetResources(resources []Resource) {
	c.setMu.Lock()
	defer c.setMu.Unlock()

	want := map[schema.GroupVersionResource]Resource{}
	kinds := map[schema.GroupKind]Resource{}
	for _, r := range resources {
		if ignored[r.GVR.GroupResource()] {
			continue
		}
		if _, dup := want[r.GVR]; !dup {
			want[r.GVR] = r
		}
		gk := schema.GroupKind{Group: r.GVR.Group, Kind: r.Kind}
		if _, dup := kinds[gk]; !dup {
			kinds[gk] = r
		}
	}

	c.mu.Lock()
	var removed []*watch
	for gvr, w := range c.watches {
		if _, ok := want[gvr]; !ok {
			removed = append(removed, w)
			delete(c.watches, gvr)
		}
	}
	var changed []schema.GroupKind
	for gk, r := range kinds {
		if old := c.byKind[gk]; !old.served || old.Resource != r {
			changed = append(changed, gk)
		}
	}
	for gk, e := range c.byKind {
		if _, ok := kinds[gk]; !ok && e.served {
			changed = append(changed, gk)
			e.served = false
			c.byKind[gk] = e
		}
	}
	for gk, r := range kinds {
		c.byKind[gk] = kindEntry{Resource: r, served: true}
	}
	c.mu.Unlock()

	// Removed resources go first: a resource served under a new version
	// (same objects, same uids) must not have its new nodes forgotten as
	// the old version's.
	var names []string
	for _, w := range removed {
		w.stop()
		c.enqueue(c.graph.forgetResource(w.res.GVR))
		names = append(names, w.res.GVR.GroupResource().String())
	}
	if len(names) > 0 {
		slices.Sort(names)
		c.logger.Info("stopped watching resources", "resources", names)
	}

	c.mu.Lock()
	names = nil
	for gvr, r := range want {
		if _, ok := c.watches[gvr]; ok {
			continue
		}
		w, err := c.newWatch(r)
		if err != nil {
			c.logger.Error("cannot watch resource", "resource", gvr.String(), "err", err)
			continue
		}
		c.watches[gvr] = w
		if c.runCtx != nil {
			w.start(c.runCtx)
			names = append(names, gvr.GroupResource().String())
		}
	}
	c.mu.Unlock()
	if len(names) > 0 {
		slices.Sort(names)
		c.logger.Info("watching resources", "resources", names)
	}

	// Objects checked while their owner's kind resolved to nothing (or to
	// another resource, or still counted as served) were kept or wait for a
	// retry: check them again.
	if len(changed) > 0 {
		for _, uid := range c.graph.withOwnerKinds(changed) {
			c.queue.Add(workItem{uid, actDelete})
		}
	}
}

// resolve returns the resource of an owner's kind: the one served, or the
// last one served for a kind no longer served.
func (c *Controller) resolve(gk schema.GroupKind) (e kindEntry, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok = c.byKind[gk]
	return e, ok
}

func (c *Controller) newWatch(r Resource) (*watch, error) {
	inf := metadatainformer.NewFilteredMetadataInformer(c.client, r.GVR, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
	reg, err := inf.AddEventHandler(c.handlers(r))
	if err != nil {
		return nil, err
	}
	return &watch{res: r, informer: inf, synced: reg.HasSynced}, nil
}

func (w *watch) start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.informer.RunWithContext(ctx)
	}()
}

// stop stops the informer and waits until its handlers have returned, so
// that none observes an object after the caller forgets them.
func (w *watch) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

// Run starts the informers and processes the graph's work until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.queue.ShutDown()
	c.mu.Lock()
	c.runCtx = ctx
	var synced []cache.InformerSynced
	var names []string
	for gvr, w := range c.watches {
		w.start(ctx)
		synced = append(synced, w.synced)
		names = append(names, gvr.String())
	}
	c.mu.Unlock()
	defer c.stopWatches()
	c.logger.Info("starting", "resources", len(names))
	c.waitForSync(ctx, synced, names)
	if ctx.Err() != nil {
		return
	}
	controllerutil.RunWorkers(ctx, c.logger, c.queue, workers, c.sync)
}

func (c *Controller) stopWatches() {
	c.mu.Lock()
	c.runCtx = nil
	ws := slices.Collect(maps.Values(c.watches))
	c.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

// waitForSync waits for the informers, but not forever: one resource that
// cannot be listed must not stop all collection. Starting early is safe,
// since every decision is checked on live objects; an unsynced resource
// only means its objects are not considered yet.
func (c *Controller) waitForSync(ctx context.Context, synced []cache.InformerSynced, names []string) {
	sctx, cancel := context.WithTimeout(ctx, c.syncTimeout)
	defer cancel()
	if cache.WaitForCacheSync(sctx.Done(), synced...) || ctx.Err() != nil {
		return
	}
	var pending []string
	for i, ok := range synced {
		if !ok() {
			pending = append(pending, names[i])
		}
	}
	c.logger.Warn("starting before all informers synced", "pending", pending)
}

// sync processes item for RunWorkers. Failures are expected here (an owner
// that cannot be checked yet) and retried with back-off, so they are logged
// at debug level only.
func (c *Controller) sync(ctx context.Context, item workItem) error {
	requeue, err := c.process(ctx, item)
	if err != nil {
		c.logger.Debug("retrying", "uid", item.uid, "action", item.act.String(), "err", err)
		return controllerutil.ErrRequeue
	}
	if requeue {
		return controllerutil.ErrRequeue
	}
	return nil
}

func (c *Controller) process(ctx context.Context, item workItem) (requeue bool, err error) {
	switch item.act {
	case actOrphan:
		return false, c.orphan(ctx, item.uid)
	default:
		return c.attemptToDelete(ctx, item.uid)
	}
}

func (c *Controller) handlers(r Resource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m, ok := obj.(metav1.Object); ok {
				c.enqueue(c.graph.observe(r, m))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			if !ok1 || !ok2 {
				return
			}
			if o.GetUID() != n.GetUID() {
				// Deleted and recreated under the same name between two watch events.
				c.enqueue(c.graph.forget(o.GetUID()))
			}
			c.enqueue(c.graph.observe(r, n))
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, ok := obj.(metav1.Object); ok {
				c.enqueue(c.graph.forget(m.GetUID()))
			}
		},
	}
}

func (c *Controller) enqueue(items []workItem) {
	for _, it := range items {
		c.queue.Add(it)
	}
}

// absentCache remembers owners verified absent. A uid never comes back, so
// entries never go stale; the bound only caps memory.
type absentCache struct {
	mu   sync.Mutex
	max  int
	uids map[objectID]struct{}
}

func newAbsentCache(max int) *absentCache {
	return &absentCache{max: max, uids: map[objectID]struct{}{}}
}

func (a *absentCache) add(id objectID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.uids) >= a.max {
		a.uids = map[objectID]struct{}{}
	}
	a.uids[id] = struct{}{}
}

func (a *absentCache) has(id objectID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.uids[id]
	return ok
}

// objectID identifies an object precisely enough to GET it and to tell a
// recreated object of the same name apart.
type objectID struct {
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
	UID       types.UID
}

func (id objectID) String() string {
	if id.Namespace == "" {
		return fmt.Sprintf("%s %s (uid %s)", id.GVR.Resource, id.Name, id.UID)
	}
	return fmt.Sprintf("%s %s/%s (uid %s)", id.GVR.Resource, id.Namespace, id.Name, id.UID)
}
