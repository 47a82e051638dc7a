// Package endpoints keeps each selector service's Endpoints and
// EndpointSlice in step with the pods it selects: ready pods' IPs as ready
// addresses, others as not ready, with the service's target ports resolved
// against each pod's container ports (named target ports included).
// Services without a selector are left to whoever manages their endpoints.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// managedBy marks the EndpointSlices this controller owns.
const managedBy = "endpointslice-controller.k8s.io"

// Controller reconciles endpoints of services.
type Controller struct {
	log      *slog.Logger
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	queue    workqueue.TypedRateLimitingInterface[string]
	synced   []cache.InformerSynced
}

// New registers the controller's informers on factory.
func New(log *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	svcInf, podInf := factory.Core().V1().Services(), factory.Core().V1().Pods()
	c := &Controller{
		log: log, client: client, services: svcInf.Lister(), pods: podInf.Lister(),
		queue:  workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoints"}),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced},
	}
	svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueObject,
		UpdateFunc: func(_, o any) { c.enqueueObject(o) },
		DeleteFunc: c.enqueueObject,
	})
	podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePodServices,
		UpdateFunc: func(old, cur any) { c.enqueuePodServices(old); c.enqueuePodServices(cur) },
		DeleteFunc: c.enqueuePodServices,
	})
	return c
}

func (c *Controller) enqueueObject(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// enqueuePodServices queues every service in the pod's namespace whose selector matches it.
func (c *Controller) enqueuePodServices(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	svcs, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if svc.Spec.Selector != nil && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

// Run reconciles with workers goroutines until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.log, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("service"))
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Endpoints and slices go with the service through their owner
		// reference (slices) or here (endpoints share its name).
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err != nil || svc.Spec.Selector == nil {
		return err
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	if err := c.syncEndpoints(ctx, svc, Subsets(svc, pods)); err != nil {
		return fmt.Errorf("endpoints %s: %w", key, err)
	}
	if err := c.syncSlice(ctx, svc, pods); err != nil {
		return fmt.Errorf("endpointslice %s: %w", key, err)
	}
	return nil
}

func (c *Controller) syncEndpoints(ctx context.Context, svc *corev1.Service, subsets []corev1.EndpointSubset) error {
	api := c.client.CoreV1().Endpoints(svc.Namespace)
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels},
		Subsets:    subsets,
	}
	cur, err := api.Get(ctx, svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if reflect.DeepEqual(cur.Subsets, want.Subsets) && reflect.DeepEqual(cur.Labels, want.Labels) {
		return nil
	}
	cur.Subsets, cur.Labels = want.Subsets, want.Labels
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// Subsets computes a service's endpoint subsets: pods with an IP, grouped by
// their resolved ports, ready ones as addresses.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	bySig := map[string]*corev1.EndpointSubset{}
	var order []string
	for _, pod := range pods {
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ports, ok := resolvePorts(svc, pod)
		if !ok {
			continue
		}
		sig := fmt.Sprint(ports)
		ss, seen := bySig[sig]
		if !seen {
			ss = &corev1.EndpointSubset{Ports: ports}
			bySig[sig] = ss
			order = append(order, sig)
		}
		addr := corev1.EndpointAddress{
			IP: pod.Status.PodIP, NodeName: ptr.To(pod.Spec.NodeName),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		// A pod naming the service as its subdomain is
		// <hostname>.<service>.<namespace>.svc in DNS.
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
			addr.Hostname = pod.Spec.Hostname
		}
		if podReady(pod) {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	sort.Strings(order)
	var out []corev1.EndpointSubset
	for _, sig := range order {
		ss := bySig[sig]
		sort.Slice(ss.Addresses, func(i, j int) bool { return ss.Addresses[i].IP < ss.Addresses[j].IP })
		sort.Slice(ss.NotReadyAddresses, func(i, j int) bool { return ss.NotReadyAddresses[i].IP < ss.NotReadyAddresses[j].IP })
		out = append(out, *ss)
	}
	return out
}

// resolvePorts maps the service's ports to the pod's; a named target port
// the pod does not have leaves the pod out.
func resolvePorts(svc *corev1.Service, pod *corev1.Pod) ([]corev1.EndpointPort, bool) {
	var ports []corev1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		port, ok := targetPort(sp, pod)
		if !ok {
			return nil, false
		}
		ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
	}
	return ports, true
}

func targetPort(sp corev1.ServicePort, pod *corev1.Pod) (int32, bool) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && p.Protocol == sp.Protocol {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.IntValue() == 0:
		return sp.Port, true
	}
	return int32(tp.IntValue()), true
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Controller) syncSlice(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod) error {
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	want := Slice(svc, pods)
	cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if reflect.DeepEqual(cur.Endpoints, want.Endpoints) && reflect.DeepEqual(cur.Ports, want.Ports) && reflect.DeepEqual(cur.Labels, want.Labels) {
		return nil
	}
	cur.Endpoints, cur.Ports, cur.Labels, cur.OwnerReferences = want.Endpoints, want.Ports, want.Labels, want.OwnerReferences
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// Slice is the one EndpointSlice of a service: its name is the service's,
// it is owned by the service, and carries the kubernetes.io/service-name label.
// Pods whose named target ports resolve differently get the first pod's
// ports (one slice per port set is left for later).
func Slice(svc *corev1.Service, pods []*corev1.Pod) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name, Namespace: svc.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: managedBy},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, ss := range Subsets(svc, pods) {
		if s.Ports == nil {
			for _, p := range ss.Ports {
				s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol), AppProtocol: p.AppProtocol})
			}
		}
		add := func(a corev1.EndpointAddress, ready bool) {
			if strings.Contains(a.IP, ":") {
				return
			}
			ep := discoveryv1.Endpoint{
				Addresses:  []string{a.IP},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
				NodeName:   a.NodeName, TargetRef: a.TargetRef,
			}
			if a.Hostname != "" {
				ep.Hostname = ptr.To(a.Hostname)
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
	}
	return s
}
