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
	logger    *slog.Logger
	client    metadata.Interface
	resources []Resource
	byKind    map[schema.GroupKind]Resource

	graph       *graph
	absent      *absentCache
	queue       workqueue.TypedRateLimitingInterface[workItem]
	synced      []cache.InformerSynced
	syncedNames []string // resource of each synced func, for logs

	maxRetry    time.Duration
	syncTimeout time.Duration
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

// New builds the collector and registers its informers on factory for every
// resource; the caller starts the factory afterwards.
func New(logger *slog.Logger, client metadata.Interface, factory metadatainformer.SharedInformerFactory, resources []Resource, opts ...Option) *Controller {
	c := &Controller{
		logger:      logger.With("controller", "garbagecollector"),
		client:      client,
		resources:   resources,
		byKind:      make(map[schema.GroupKind]Resource, len(resources)),
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
	for _, r := range resources {
		if ignored[r.GVR.GroupResource()] {
			continue
		}
		gk := schema.GroupKind{Group: r.GVR.Group, Kind: r.Kind}
		if _, dup := c.byKind[gk]; !dup {
			c.byKind[gk] = r
		}
		inf := factory.ForResource(r.GVR).Informer()
		reg, err := inf.AddEventHandler(c.handlers(r))
		if err != nil {
			c.logger.Error("cannot watch resource", "resource", r.GVR.String(), "err", err)
			continue
		}
		c.synced = append(c.synced, reg.HasSynced)
		c.syncedNames = append(c.syncedNames, r.GVR.String())
	}
	return c
}

// Run processes the graph's work until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.queue.ShutDown()
	c.logger.Info("starting", "resources", len(c.resources))
	c.waitForSync(ctx)
	if ctx.Err() != nil {
		return
	}
	controllerutil.RunWorkers(ctx, c.logger, c.queue, workers, c.sync)
}

// waitForSync waits for the informers, but not forever: one resource that
// cannot be listed must not stop all collection. Starting early is safe,
// since every decision is checked on live objects; an unsynced resource
// only means its objects are not considered yet.
func (c *Controller) waitForSync(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, c.syncTimeout)
	defer cancel()
	if cache.WaitForCacheSync(sctx.Done(), c.synced...) || ctx.Err() != nil {
		return
	}
	var pending []string
	for i, synced := range c.synced {
		if !synced() {
			pending = append(pending, c.syncedNames[i])
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
