// Package namespace finishes namespace deletion. The API server keeps a
// deleted namespace (phase Terminating) while spec.finalizers holds
// "kubernetes"; this controller deletes everything in it, waits until all of
// it is really gone (pods take their grace period, objects with finalizers
// wait for their owners), reports progress in status conditions like
// Kubernetes, and then finalizes the namespace so the server can remove it.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// errContentRemaining makes the queue retry with back-off, quietly, while
// content drains.
var errContentRemaining = fmt.Errorf("content remaining: %w", controllerutil.ErrRequeue)

// Controller deletes the content of terminating namespaces.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	meta     metadata.Interface
	discover DiscoverFunc
	clock    clock.PassiveClock

	lister corelisters.NamespaceLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	retryBase, retryMax time.Duration
}

// DiscoverFunc returns the namespaced resources to empty (they must support
// list and delete). On a partial failure it returns what it found with the
// error: that much is deleted, but the namespace is not finalized.
type DiscoverFunc func() ([]schema.GroupVersionResource, error)

// Option configures a Controller.
type Option func(*Controller)

// WithRetryBackoff sets the back-off between checks of a namespace whose
// content is still draining (default 250 ms doubling up to 5 s).
func WithRetryBackoff(base, max time.Duration) Option {
	return func(c *Controller) { c.retryBase, c.retryMax = base, max }
}

// WithClock sets the clock used for condition transition times.
func WithClock(clk clock.PassiveClock) Option {
	return func(c *Controller) { c.clock = clk }
}

// New builds the controller. discover is called on each deletion pass, as
// Kubernetes' namespace controller does, so that resources served since
// start (custom resources) are emptied too; factory provides the namespace
// informer.
func New(logger *slog.Logger, client kubernetes.Interface, meta metadata.Interface, factory informers.SharedInformerFactory, discover DiscoverFunc, opts ...Option) *Controller {
	c := &Controller{
		logger:    logger.With("controller", "namespace"),
		client:    client,
		meta:      meta,
		discover:  discover,
		clock:     clock.RealClock{},
		retryBase: 250 * time.Millisecond,
		retryMax:  5 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](c.retryBase, c.retryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"})
	inf := factory.Core().V1().Namespaces()
	c.lister = inf.Lister()
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
	})
	if err != nil {
		c.logger.Error("cannot watch namespaces", "err", err)
		c.synced = func() bool { return false }
	} else {
		c.synced = reg.HasSynced
	}
	return c
}

func (c *Controller) enqueue(obj any) {
	if ns, ok := obj.(*v1.Namespace); ok && ns.DeletionTimestamp != nil {
		c.queue.Add(ns.Name)
	}
}

// Run processes terminating namespaces until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.queue.ShutDown()
	c.logger.Info("starting")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return
	}
	controllerutil.RunWorkers(ctx, c.logger, c.queue, workers, c.sync,
		controllerutil.KeyAttr("namespace"), controllerutil.FailureMessage("namespace deletion failed, retrying"))
}

func (c *Controller) sync(ctx context.Context, name string) error {
	if cached, err := c.lister.Get(name); err != nil || cached.DeletionTimestamp == nil {
		return nil
	}
	// Live read: the cache may predate our own last status update or finalize.
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %q: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, v1.FinalizerKubernetes) {
		return nil
	}

	res := c.deleteContent(ctx, name)
	ns = c.updateConditions(ctx, ns, res)
	if res.discoveryErr != nil || len(res.failures) > 0 {
		return fmt.Errorf("namespace %q: delete content: %w", name, errors.Join(append([]error{res.discoveryErr}, res.failures...)...))
	}
	if n := res.total(); n > 0 {
		c.logger.Debug("waiting for content to go", "namespace", name, "remaining", n)
		return errContentRemaining
	}

	ns = ns.DeepCopy()
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f v1.FinalizerName) bool { return f == v1.FinalizerKubernetes })
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("finalize namespace %q: %w", name, err)
	}
	c.logger.Info("namespace content gone, finalized", "namespace", name)
	return nil
}

// updateConditions writes the content conditions when they changed, best
// effort: a failure here must not hold up the deletion itself. It returns
// the namespace to continue with (the updated one carries the new
// resourceVersion that Finalize needs).
func (c *Controller) updateConditions(ctx context.Context, ns *v1.Namespace, res contentResult) *v1.Namespace {
	conds, changed := mergeConditions(ns.Status.Conditions, res.conditions(), metav1.NewTime(c.clock.Now()))
	if !changed {
		return ns
	}
	upd := ns.DeepCopy()
	upd.Status.Conditions = conds
	out, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		c.logger.Debug("cannot update namespace conditions", "namespace", ns.Name, "err", err)
		return ns
	}
	return out
}
