package coe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// errDeleting cancels a cluster's running create or update when the
// cluster is deleted: deletion takes over at once instead of waiting for
// a create that may never finish.
var errDeleting = errors.New("cluster is being deleted")

func (c *Controller) registerHandlers() {
	c.clusters.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueue(obj) },
		UpdateFunc: func(old, cur any) {
			o, n := meta(old), meta(cur)
			if o == nil || n == nil {
				return
			}
			if n.GetDeletionTimestamp() != nil && o.GetDeletionTimestamp() == nil {
				c.cancelOp(n.GetUID())
			}
			// Status writes (ours, the health loop's) need no sync; a
			// resync (same resourceVersion) or a user's change does.
			if o.GetResourceVersion() == n.GetResourceVersion() || o.GetGeneration() != n.GetGeneration() ||
				(o.GetDeletionTimestamp() == nil) != (n.GetDeletionTimestamp() == nil) ||
				!maps.Equal(o.GetLabels(), n.GetLabels()) || !maps.Equal(o.GetAnnotations(), n.GetAnnotations()) {
				c.enqueue(cur)
			}
		},
		DeleteFunc: func(obj any) {
			if m := meta(obj); m != nil {
				c.forget(m.GetUID())
			}
		},
	})
	c.groups.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueGroupCluster,
		UpdateFunc: func(old, cur any) {
			o, n := meta(old), meta(cur)
			if o != nil && n != nil && (o.GetResourceVersion() == n.GetResourceVersion() || o.GetGeneration() != n.GetGeneration()) {
				c.enqueueGroupCluster(cur)
			}
		},
		DeleteFunc: c.enqueueGroupCluster,
	})
	c.synced = []cache.InformerSynced{c.clusters.HasSynced, c.groups.HasSynced}
}

// meta returns an informer object's metadata (nil for anything else).
func meta(obj any) metav1.Object {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, _ := obj.(metav1.Object)
	return m
}

func (c *Controller) enqueue(obj any) {
	if m := meta(obj); m != nil {
		c.queue.Add(m.GetNamespace() + "/" + m.GetName())
	}
}

// enqueueGroupCluster queues the cluster a node group belongs to.
func (c *Controller) enqueueGroupCluster(obj any) {
	m := meta(obj)
	if m == nil {
		return
	}
	if g, ok := m.(*wharfv1.NodeGroup); ok && g.Spec.Cluster != "" {
		c.queue.Add(g.Namespace + "/" + g.Spec.Cluster)
	}
}

// Run starts the informers, the workers and the health loop, and returns
// once ctx is done and they all stopped.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.recorder = c.cfg.Autoscale.Recorder
	if c.recorder == nil {
		var stop func()
		c.recorder, stop = newRecorder(c.cfg.Kube)
		defer stop()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.clusters.RunWithContext(ctx) })
	wg.Go(func() { c.groups.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("cluster controller: wharf.dev informers did not sync: %w", ctx.Err())
	}
	c.log.Info("cluster controller started", "workers", c.cfg.Workers, "providers", slices.Sorted(maps.Keys(c.cfg.Providers)))
	wg.Go(func() { c.healthLoop(ctx) })
	wg.Go(func() { c.autoscaleLoop(ctx) })
	wg.Go(func() { c.bk.run(ctx) })
	controllerutil.RunWorkers(ctx, c.log, c.queue, c.cfg.Workers, c.sync,
		controllerutil.KeyAttr("cluster"), controllerutil.FailureMessage("cluster sync failed, retrying"))
	return nil
}

// track makes ctx cancellable by the cluster's deletion for one sync.
func (c *Controller) track(ctx context.Context, uid types.UID) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.ops[uid] = cancel
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		delete(c.ops, uid)
		c.mu.Unlock()
		cancel(nil)
	}
}

func (c *Controller) cancelOp(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.ops[uid]; ok {
		cancel(errDeleting)
	}
}

// forget drops what the controller keeps about a cluster that is gone.
func (c *Controller) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.creds, uid)
	delete(c.clients, uid)
	delete(c.health, uid)
	c.lbMu.Lock()
	defer c.lbMu.Unlock()
	delete(c.lbFull, uid)
	delete(c.lbWritten, uid)
}
