// Package ingress is the server's half of the ingress controller (the
// agents' proxies, package network/ingress, are the other): it makes the
// default IngressClass "wharf" when the cluster has none of ours, keeps
// the LoadBalancer service kube-system/wharf-ingress whose endpoints are
// the Ready nodes' ingress ports (their agents publish them in
// wire.IngressPortsAnnotation), writes each served Ingress's
// status.loadBalancer (that service's address when it has one and
// endpoints, else the Ready nodes' addresses), and turns what is wrong with an
// Ingress (a TLS Secret missing, of the wrong type, or whose key does not
// match; a backend service or port missing; a path another Ingress holds)
// into Warning Events on it, once per problem, so that `kubectl describe
// ingress` says why a host is not served, while the other Ingresses go on.
//
// The problems are the data plane's own: the controller runs a Proxy that
// never serves, fed by the server's informers, and reads its Problems, so
// the server and the agents cannot disagree on what is wrong.
package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	listersnetworking "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	dataplane "wharf.dev/wharf/internal/network/ingress"
	"wharf.dev/wharf/internal/wire"
)

// DefaultClass is the IngressClass the controller makes when the cluster
// has none of ours: the cluster's default class.
const DefaultClass = "wharf"

// The ingress load balancer: a Service without selector, whose endpoint
// slices (one per set of ports) the controller writes. Its
// externalTrafficPolicy is Local: the node holding the address is one
// whose agent serves, and the client's address reaches the proxy.
const (
	ServiceNamespace = metav1.NamespaceSystem
	ServiceName      = "wharf-ingress"
	managedBy        = "ingress-controller.wharf.dev"
	// lbKey is the queue's key for the service and its slices.
	lbKey = ""
)

// Event reasons.
const (
	ReasonProblem  = "IngressProblem"
	ReasonResolved = "ProblemsResolved"
)

// Controller keeps Ingresses' status and events.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	proxy    *dataplane.Proxy

	ingresses listersnetworking.IngressLister
	nodes     corelisters.NodeLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// reported are the problems last reported per Ingress.
	reported map[types.NamespacedName][]string
}

// New builds the controller on factory's informers.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	c := &Controller{
		logger: logger, client: client, recorder: recorder,
		reported: map[types.NamespacedName][]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress"}),
	}
	// Every new table of the proxy is looked at: the Ingresses it serves
	// get their status and problems from it.
	c.proxy = dataplane.New(dataplane.Config{Logger: slog.New(slog.DiscardHandler), OnBuild: c.enqueueServed})
	p := c.proxy
	ing := factory.Networking().V1().Ingresses()
	c.ingresses, c.nodes = ing.Lister(), factory.Core().V1().Nodes().Lister()
	c.services, c.slices = factory.Core().V1().Services().Lister(), factory.Discovery().V1().EndpointSlices().Lister()
	lbChanged := func(ns, name string) {
		if ns == ServiceNamespace && name == ServiceName {
			c.queue.Add(lbKey)
			c.enqueueServed()
		}
	}
	c.synced = controllerutil.AddEventHandlers(logger,
		feed(ing.Informer(), p.UpdateIngress, func(ns, name string) {
			p.DeleteIngress(ns, name)
			c.forget(types.NamespacedName{Namespace: ns, Name: name})
		}),
		feed(factory.Networking().V1().IngressClasses().Informer(), p.UpdateIngressClass, func(_, name string) { p.DeleteIngressClass(name) }),
		feed(factory.Core().V1().Services().Informer(), func(o *corev1.Service) { p.UpdateService(o); lbChanged(o.Namespace, o.Name) },
			func(ns, name string) { p.DeleteService(ns, name); lbChanged(ns, name) }),
		feed(factory.Discovery().V1().EndpointSlices().Informer(), func(o *discoveryv1.EndpointSlice) {
			p.UpdateEndpointSlice(o)
			lbChanged(o.Namespace, o.Labels[discoveryv1.LabelServiceName])
		}, p.DeleteEndpointSlice),
		feed(factory.Core().V1().Secrets().Informer(), p.UpdateSecret, p.DeleteSecret),
		// The nodes are the addresses of the status and the service's endpoints.
		feed(factory.Core().V1().Nodes().Informer(), func(*corev1.Node) { c.queue.Add(lbKey); c.enqueueServed() },
			func(_, _ string) { c.queue.Add(lbKey); c.enqueueServed() }),
	)
	return c
}

// feed adapts typed update and delete functions to an informer's events.
func feed[T metav1.Object](inf cache.SharedIndexInformer, update func(T), del func(ns, name string)) controllerutil.EventHandler {
	return controllerutil.EventHandler{Informer: inf, Handler: cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if t, ok := o.(T); ok {
				update(t)
			}
		},
		UpdateFunc: func(_, o any) {
			if t, ok := o.(T); ok {
				update(t)
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := controllerutil.DeletedObject[T](o); ok {
				del(t.GetNamespace(), t.GetName())
			}
		},
	}}
}

// enqueueServed queues the Ingresses the proxy serves.
func (c *Controller) enqueueServed() {
	for _, k := range c.proxy.Served() {
		c.queue.Add(k.String())
	}
}

func (c *Controller) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reported, key)
}

// Run makes the default class if need be, then keeps the Ingresses until
// ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			c.proxy.Sync()
			c.ensureDefaultClass(ctx)
		}
	}()
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync,
		controllerutil.KeyAttr("ingress"), controllerutil.FailureMessage("cannot update the ingress (\"\": its load balancer), retrying"))
}

// ensureDefaultClass makes DefaultClass, the cluster's default, when no
// IngressClass names our controller: Ingresses without a class are then
// served, as on k3s with its bundled controller. A class of ours that an
// administrator deleted comes back only if none is left.
func (c *Controller) ensureDefaultClass(ctx context.Context) {
	classes, err := c.client.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.logger.Warn("ingress classes not read", "err", err)
		return
	}
	for _, cl := range classes.Items {
		if cl.Spec.Controller == dataplane.DefaultController {
			return
		}
	}
	_, err = c.client.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultClass, Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: dataplane.DefaultController},
	}, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.logger.Info("default ingress class made", "class", DefaultClass)
	case !apierrors.IsAlreadyExists(err):
		c.logger.Warn("default ingress class not made", "err", err)
	}
}

// sync writes one Ingress's status and reports its new problems, or
// (lbKey) keeps the ingress load balancer.
func (c *Controller) sync(ctx context.Context, key string) error {
	if key == lbKey {
		return c.syncLoadBalancer(ctx)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ing, err := c.ingresses.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	nn := types.NamespacedName{Namespace: ns, Name: name}
	if !slices.Contains(c.proxy.Served(), nn) {
		return nil // another controller's (or gone since the build)
	}
	c.report(ing, c.proxy.Problems()[nn])
	want := c.addresses()
	if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	upd := ing.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	_, err = c.client.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

// report emits an Event for each problem not reported before, and one
// when the last problem is gone.
func (c *Controller) report(ing *networkingv1.Ingress, problems []string) {
	key := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
	c.mu.Lock()
	before := c.reported[key]
	c.reported[key] = problems
	c.mu.Unlock()
	for _, p := range problems {
		if !slices.Contains(before, p) {
			c.recorder.Event(ing, corev1.EventTypeWarning, ReasonProblem, p)
		}
	}
	if len(problems) == 0 && len(before) > 0 {
		c.recorder.Event(ing, corev1.EventTypeNormal, ReasonResolved, "every problem of the ingress is resolved")
	}
}

// addresses are where the Ingresses answer: the ingress load balancer's
// address when it has one and endpoints, else the InternalIPs of the
// Ready nodes, where the agents' proxies listen.
func (c *Controller) addresses() []networkingv1.IngressLoadBalancerIngress {
	if ip := c.loadBalancerIP(); ip != "" {
		return []networkingv1.IngressLoadBalancerIngress{{IP: ip}}
	}
	var ips []netip.Addr
	for _, n := range c.readyNodes() {
		ips = append(ips, n.ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var out []networkingv1.IngressLoadBalancerIngress
	for _, ip := range slices.Compact(ips) {
		out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip.String()})
	}
	return out
}

// readyNode is a Ready node's name, InternalIP and ingress ports (0: none
// published or served).
type readyNode struct {
	name        string
	ip          netip.Addr
	http, https int
}

// readyNodes are the Ready nodes with an InternalIP that is not loopback
// (`wharf up --node-ip 127.0.0.1`'s is no address for a status or an
// endpoint), by name.
func (c *Controller) readyNodes() []readyNode {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []readyNode
	for _, n := range nodes {
		if !ready(n) {
			continue
		}
		for _, a := range n.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || a.Type != corev1.NodeInternalIP || ip.IsLoopback() || !ip.Is4() {
				continue
			}
			rn := readyNode{name: n.Name, ip: ip}
			rn.http, rn.https, _ = wire.ParseIngressPorts(n.Annotations[wire.IngressPortsAnnotation])
			out = append(out, rn)
			break
		}
	}
	slices.SortFunc(out, func(a, b readyNode) int { return strings.Compare(a.name, b.name) })
	return out
}

// loadBalancerIP is the ingress load balancer's address, if it has one
// and a ready endpoint.
func (c *Controller) loadBalancerIP() string {
	svc, err := c.services.Services(ServiceNamespace).Get(ServiceName)
	if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
		return ""
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: ServiceName})
	sl, err := c.slices.EndpointSlices(ServiceNamespace).List(sel)
	if err != nil {
		return ""
	}
	for _, s := range sl {
		if len(s.Endpoints) > 0 {
			return svc.Status.LoadBalancer.Ingress[0].IP
		}
	}
	return ""
}

// syncLoadBalancer makes the ingress load balancer service if it is
// missing and writes its endpoint slices: the Ready nodes that publish
// ingress ports, a slice per set of ports.
func (c *Controller) syncLoadBalancer(ctx context.Context) error {
	svc, err := c.services.Services(ServiceNamespace).Get(ServiceName)
	if apierrors.IsNotFound(err) {
		svc, err = c.client.CoreV1().Services(ServiceNamespace).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Labels: map[string]string{discoveryv1.LabelManagedBy: managedBy}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // the informer brings it
		}
	}
	if err != nil {
		return err
	}
	want := map[string]*discoveryv1.EndpointSlice{}
	for _, n := range c.readyNodes() {
		if n.http == 0 && n.https == 0 {
			continue
		}
		name := fmt.Sprintf("%s-%d-%d", ServiceName, n.http, n.https)
		s := want[name]
		if s == nil {
			s = &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ServiceNamespace,
					Labels:          map[string]string{discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: managedBy},
					OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))}},
				AddressType: discoveryv1.AddressTypeIPv4,
			}
			for _, p := range []struct {
				name string
				port int
			}{{"http", n.http}, {"https", n.https}} {
				if p.port > 0 {
					s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.name), Port: ptr.To(int32(p.port)), Protocol: ptr.To(corev1.ProtocolTCP)})
				}
			}
			want[name] = s
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{n.ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(n.name)})
	}
	api := c.client.DiscoveryV1().EndpointSlices(ServiceNamespace)
	have, err := c.slices.EndpointSlices(ServiceNamespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: managedBy}))
	if err != nil {
		return err
	}
	for _, cur := range have {
		w, ok := want[cur.Name]
		switch {
		case !ok:
			if err := api.Delete(ctx, cur.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		case !equality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) || !equality.Semantic.DeepEqual(cur.Ports, w.Ports):
			upd := cur.DeepCopy()
			upd.Endpoints, upd.Ports = w.Endpoints, w.Ports
			if _, err := api.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		delete(want, cur.Name)
	}
	for _, s := range want {
		if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
