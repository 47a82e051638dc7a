// Package servicelb gives every Service of type LoadBalancer an IPv4
// address from a pool (wharf server --lb-cidr) and writes it to
// status.loadBalancer.ingress, like MetalLB's controller: announcing the
// address is the agents' business, choosing it is this package's.
//
// The addresses in use are derived from the services themselves, never kept
// as separate state, so a restarted controller (or another server taking
// over) sees the truth, and a deleted service's address is free once the
// service is gone. A service keeps the address its status shows as long as
// it is in the pool and no older service shows the same one (two can, after
// a restore from a backup: the older, by creationTimestamp then name, keeps
// it and the other gets a new one). Addresses handed out but not yet visible
// in the informer cache are remembered (pending) until the cache catches up,
// so a stale cache never hands one address to two services; choosing is
// serialised under a mutex over a fresh list of the cache.
//
// Services whose spec.loadBalancerClass names another implementation are
// left to it, as Kubernetes intends the field for: several load balancer
// implementations can serve one cluster, each its own class. Unset, or
// Class, is ours. Of another class's service only the addresses of our pool
// are removed from its status (it was ours before its class changed); of a
// service that is no longer a LoadBalancer the whole ingress is, as
// Kubernetes' service controller does. The pool must therefore not overlap
// another implementation's addresses.
//
// Without a pool this controller gives nothing and clears nothing: it only
// tells, with an event, services still waiting for an address why they
// wait. Another implementation may then serve class-less services.
package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

const (
	// Class is the spec.loadBalancerClass this controller serves, besides
	// services with none.
	Class = "wharf.dev/l2"
	// IPsAnnotation asks for specific addresses, comma-separated, like
	// metallb.universe.tf/loadBalancerIPs; it takes precedence over the
	// deprecated spec.loadBalancerIP. The first IPv4 address is used.
	IPsAnnotation = "wharf.dev/load-balancer-ips"
)

// Event reasons.
const (
	ReasonAllocated = "IPAllocated"
	ReasonFailed    = "AllocationFailed"
)

// Controller assigns load balancer addresses to services.
type Controller struct {
	reserved map[netip.Addr]bool
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	// static is the pool of the server's flags; cur the pool in use: static,
	// or the pool ConfigMap's (WithPoolConfigMap). Swapped under mu.
	static    pool
	cur       atomic.Pointer[pool]
	forbidden []netip.Prefix // ranges a ConfigMap's pool must not overlap
	// poolFactory watches the pool ConfigMap (WithPoolConfigMap); nil: none.
	poolFactory informers.SharedInformerFactory

	services corelisters.ServiceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	// mu guards pending and reported and serialises choosing, so that two
	// workers never pick the same free address.
	mu sync.Mutex
	// pending are addresses given (or being given) to services, by service
	// key, that the cache does not show yet.
	pending map[string]reservation
	// reported is the last outcome of each service's allocation that an
	// event told, so that a resync of an unchanged service tells nothing.
	reported map[string]string
}

// reservation is an address chosen for a service on the cache's view of it
// at resourceVersion. Once the cache shows another version of the service,
// it shows the status write too, or the write failed: either way the
// reservation is done.
type reservation struct {
	addr            netip.Addr
	resourceVersion string
	// written: the write succeeded; until the cache shows it, there is
	// nothing to do (another write would only conflict).
	written bool
}

// New builds the controller on factory's service informer. pool may be
// empty; ParsePool validates one.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, prefixes []netip.Prefix, opts ...Option) *Controller {
	c := &Controller{
		logger:   logger,
		client:   client,
		recorder: recorder,
		static:   newPool(prefixes),
		pending:  map[string]reservation{},
		reported: map[string]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "servicelb"}),
	}
	inf := factory.Core().V1().Services()
	c.services = inf.Lister()
	c.synced = controllerutil.AddEventHandlers(c.logger, controllerutil.EventHandler{Informer: inf.Informer(),
		Handler: cache.ResourceEventHandlerFuncs{AddFunc: c.serviceAdded, UpdateFunc: c.serviceUpdated, DeleteFunc: c.serviceDeleted}})
	c.cur.Store(&c.static)
	for _, o := range opts {
		o(c)
	}
	return c
}

// pool is the pool in use.
func (c *Controller) pool() pool { return *c.cur.Load() }

// Run assigns addresses until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	if p := c.pool(); len(p) == 0 {
		c.logger.Info("no load balancer pool: LoadBalancer services stay pending")
	} else {
		c.logger.Info("load balancer pool", "pool", p.String(), "addresses", p.size())
	}
	if c.poolFactory != nil {
		c.poolFactory.Start(ctx.Done())
		defer c.poolFactory.Shutdown()
	}
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync,
		controllerutil.KeyAttr("service"), controllerutil.FailureMessage("cannot assign load balancer address, retrying"))
}

// ours reports whether svc is a LoadBalancer service this controller serves.
func ours(svc *v1.Service) bool {
	return svc.Spec.Type == v1.ServiceTypeLoadBalancer &&
		(svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == Class)
}

// relevant reports whether svc may need work: a LoadBalancer, or a service
// whose ingress may have to go.
func relevant(svc *v1.Service) bool {
	return svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0
}

// claim returns the address of the pool that svc's status shows, if any:
// the first such ingress IP.
func (c *Controller) claim(svc *v1.Service) netip.Addr {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil && c.pool().contains(a) {
			return a
		}
	}
	return netip.Addr{}
}

func keyOf(svc *v1.Service) string { return svc.Namespace + "/" + svc.Name }

func (c *Controller) serviceAdded(obj any) {
	if svc, ok := obj.(*v1.Service); ok && relevant(svc) {
		c.queue.Add(keyOf(svc))
	}
}

func (c *Controller) serviceUpdated(oldObj, newObj any) {
	old, ok1 := oldObj.(*v1.Service)
	cur, ok2 := newObj.(*v1.Service)
	if !ok1 || !ok2 {
		return
	}
	if relevant(cur) || relevant(old) {
		c.queue.Add(keyOf(cur))
	}
	if a := c.claim(old); a.IsValid() && c.claim(cur) != a {
		c.enqueueWaiting()
	}
}

// serviceDeleted frees the service's address: services waiting for one
// may get it.
func (c *Controller) serviceDeleted(obj any) {
	svc, ok := controllerutil.DeletedObject[*v1.Service](obj)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.pending, keyOf(svc))
	delete(c.reported, keyOf(svc))
	c.mu.Unlock()
	if relevant(svc) {
		c.enqueueWaiting()
	}
}

// enqueueWaiting queues our services that have no address: one may have
// become free.
func (c *Controller) enqueueWaiting() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if ours(svc) && !c.claim(svc).IsValid() {
			c.queue.Add(keyOf(svc))
		}
	}
}

// sync gives the service named key the address it should have, or takes
// away the one it should not.
func (c *Controller) sync(ctx context.Context, key string) error {
	d, err := c.decide(key)
	if err != nil {
		return err
	}
	if d.freed {
		c.enqueueWaiting()
	}
	svc := d.svc
	switch {
	case svc == nil:
		return nil
	case !ours(svc):
		return c.release(ctx, svc)
	}
	if d.failure != "" && c.note(key, ReasonFailed+": "+d.failure) {
		c.recorder.Event(svc, v1.EventTypeWarning, ReasonFailed, d.failure)
	}
	if d.leave || d.written {
		return nil
	}
	var want []v1.LoadBalancerIngress
	if d.addr.IsValid() {
		want = []v1.LoadBalancerIngress{{IP: d.addr.String(), IPMode: ptr.To(v1.LoadBalancerIPModeVIP)}}
	}
	allocated := "Assigned IP " + d.addr.String()
	if equality.Semantic.DeepEqual(svc.Status.LoadBalancer.Ingress, want) {
		if d.addr.IsValid() {
			c.note(key, ReasonAllocated+": "+allocated)
		}
		return nil
	}
	if err := c.writeIngress(ctx, svc, want); err != nil {
		return err
	}
	switch {
	case d.fresh:
		c.mu.Lock()
		if r, ok := c.pending[key]; ok && r.addr == d.addr {
			r.written = true
			c.pending[key] = r
		}
		c.mu.Unlock()
		c.logger.Info("assigned load balancer address", "service", key, "ip", d.addr)
		c.note(key, ReasonAllocated+": "+allocated)
		c.recorder.Event(svc, v1.EventTypeNormal, ReasonAllocated, allocated)
	case d.addr.IsValid():
		c.note(key, ReasonAllocated+": "+allocated)
	default:
		c.logger.Info("removed load balancer address", "service", key, "reason", d.failure)
	}
	return nil
}

// release removes from the ingress of svc, which is not ours, what it
// should not show any more: everything if it is no longer a LoadBalancer,
// else our pool's addresses.
func (c *Controller) release(ctx context.Context, svc *v1.Service) error {
	var keep []v1.LoadBalancerIngress
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil && c.pool().contains(a) {
				continue
			}
			keep = append(keep, in)
		}
	}
	if len(keep) == len(svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	if err := c.writeIngress(ctx, svc, keep); err != nil {
		return err
	}
	c.logger.Info("released load balancer address", "service", keyOf(svc), "type", svc.Spec.Type, "class", ptr.Deref(svc.Spec.LoadBalancerClass, ""))
	return nil
}

// writeIngress sets the ingress of svc. An update, not a patch: it carries
// the cache's resourceVersion, so a service changed meanwhile (or whose
// previous write the cache does not show yet) is a conflict, retried by
// the workqueue on a newer view.
func (c *Controller) writeIngress(ctx context.Context, svc *v1.Service, ingress []v1.LoadBalancerIngress) error {
	update := svc.DeepCopy()
	update.Status.LoadBalancer.Ingress = ingress
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil // its delete event frees what it held
	}
	if err != nil {
		return fmt.Errorf("update status of service %s: %w", keyOf(svc), err)
	}
	return nil
}

// note records outcome as the last one told for the service named key and
// reports whether it differs from the previous one.
func (c *Controller) note(key, outcome string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.reported[key] != outcome
	c.reported[key] = outcome
	return changed
}
