// Package serviceaccount keeps a ServiceAccount named "default" in every
// active namespace, recreating it when deleted, like Kubernetes'
// serviceaccounts controller. Pods that name no service account get this one.
package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// DefaultName is the service account every namespace gets.
const DefaultName = "default"

// Controller ensures the service accounts exist.
type Controller struct {
	logger *slog.Logger
	client kubernetes.Interface
	names  []string

	nsLister corelisters.NamespaceLister
	saLister corelisters.ServiceAccountLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// Option configures a Controller.
type Option func(*Controller)

// WithNames sets the service accounts to ensure (default: just "default").
func WithNames(names ...string) Option {
	return func(c *Controller) { c.names = names }
}

// New builds the controller on factory's namespace and service account informers.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Option) *Controller {
	c := &Controller{
		logger: logger.With("controller", "serviceaccount"),
		client: client,
		names:  []string{DefaultName},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount"}),
	}
	for _, o := range opts {
		o(c)
	}
	nsInf := factory.Core().V1().Namespaces()
	saInf := factory.Core().V1().ServiceAccounts()
	c.nsLister, c.saLister = nsInf.Lister(), saInf.Lister()
	c.register(nsInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.namespaceChanged,
		UpdateFunc: func(_, obj any) { c.namespaceChanged(obj) },
	})
	c.register(saInf.Informer(), cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.serviceAccountDeleted,
	})
	return c
}

func (c *Controller) register(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		c.logger.Error("cannot add event handler", "err", err)
		c.synced = append(c.synced, func() bool { return false })
		return
	}
	c.synced = append(c.synced, reg.HasSynced)
}

func (c *Controller) namespaceChanged(obj any) {
	if ns, ok := obj.(*v1.Namespace); ok && controllerutil.NamespaceActive(ns) {
		c.queue.Add(ns.Name)
	}
}

func (c *Controller) serviceAccountDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if sa, ok := obj.(*v1.ServiceAccount); ok {
		c.queue.Add(sa.Namespace)
	}
}

// Run ensures service accounts until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync,
		controllerutil.KeyAttr("namespace"), controllerutil.FailureMessage("cannot ensure service accounts, retrying"))
}

func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %q: %w", name, err)
	}
	if !controllerutil.NamespaceActive(ns) {
		return nil
	}
	for _, sa := range c.names {
		if _, err := c.saLister.ServiceAccounts(name).Get(sa); err == nil {
			continue
		}
		obj := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: sa}}
		_, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, obj, metav1.CreateOptions{})
		switch {
		case err == nil:
			c.logger.Info("created service account", "namespace", name, "name", sa)
		case apierrors.IsAlreadyExists(err):
			// The cache was behind.
		case apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause):
			// The namespace went away or started terminating meanwhile. A
			// plain Forbidden retries until the informer says terminating.
			return nil
		default:
			return fmt.Errorf("create service account %s/%s: %w", name, sa, err)
		}
	}
	return nil
}
