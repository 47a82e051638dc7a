package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/servicealloc"
	"wharf.dev/wharf/internal/storage"
)

// serviceWrite carries one service create or update's reservations
// (package servicealloc): those it made, so that a failed write gives
// them back and a successful one gives back what it no longer holds.
type serviceWrite struct {
	s       *Server
	dry     bool
	created []servicealloc.Key
	old     *corev1.Service
	owner   servicealloc.Owner
}

// startServiceWrite prepares req, a service write, for allocation; call
// finish with what was stored (nil: nothing) when the write is over.
// Without an etcd allocator (unit tests), service writes of this server
// are serialised instead, which is safe with one server only.
func (s *Server) startServiceWrite(req *request, dry bool) (finish func(ctx context.Context, stored runtime.Object)) {
	if req.gvr.Group != "" || req.gvr.Resource != "services" {
		return func(context.Context, runtime.Object) {}
	}
	if s.alloc == nil {
		s.svcMu.Lock()
		return func(context.Context, runtime.Object) { s.svcMu.Unlock() }
	}
	w := &serviceWrite{s: s, dry: dry}
	req.svc = w
	return w.finish
}

// finish releases the reservations the stored service (nil: none was
// stored) does not hold: those this write made in vain, and on an
// update those the old service held and the new one dropped.
func (w *serviceWrite) finish(ctx context.Context, stored runtime.Object) {
	if w.dry {
		return
	}
	drop := w.created
	var keep []servicealloc.Key
	if svc, ok := stored.(*corev1.Service); ok {
		keep = serviceKeys(svc)
		if w.old != nil {
			drop = append(drop, serviceKeys(w.old)...)
		}
	}
	drop = slices.DeleteFunc(slices.Clone(drop), func(k servicealloc.Key) bool { return slices.Contains(keep, k) })
	if len(drop) == 0 {
		return
	}
	// The client may be gone; the reservations must still go.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.s.alloc.Release(ctx, w.owner, drop...); err != nil {
		w.s.log.Warn("releasing service reservations (repair frees them later)", "service", w.owner.String(), "err", err)
	}
}

// releaseService frees what a deleted service held.
func (s *Server) releaseService(ctx context.Context, obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok || s.alloc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.alloc.Release(ctx, ownerOf(svc), serviceKeys(svc)...); err != nil {
		s.log.Warn("releasing a deleted service's reservations (repair frees them later)", "service", svc.Namespace+"/"+svc.Name, "err", err)
	}
}

func ownerOf(svc *corev1.Service) servicealloc.Owner {
	return servicealloc.Owner{UID: string(svc.UID), Namespace: svc.Namespace, Name: svc.Name}
}

// serviceKeys lists what svc holds: its cluster IPs, node ports and
// health check node port.
func serviceKeys(svc *corev1.Service) []servicealloc.Key {
	var keys []servicealloc.Key
	for _, ip := range svc.Spec.ClusterIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			keys = append(keys, ipKey(a))
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			keys = append(keys, portKey(p.NodePort))
		}
	}
	if p := svc.Spec.HealthCheckNodePort; p != 0 {
		keys = append(keys, portKey(p))
	}
	slices.SortFunc(keys, func(a, b servicealloc.Key) int {
		if a.Range != b.Range {
			return compareStrings(string(a.Range), string(b.Range))
		}
		return compareStrings(a.Value, b.Value)
	})
	return slices.Compact(keys)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ipKey(a netip.Addr) servicealloc.Key {
	return servicealloc.Key{Range: servicealloc.ClusterIPs, Value: a.String()}
}

func portKey(p int32) servicealloc.Key {
	return servicealloc.Key{Range: servicealloc.NodePorts, Value: strconv.Itoa(int(p))}
}

// reuse returns a value of range r this write reserved already (an
// update retried after a conflict) that ok accepts.
func (w *serviceWrite) reuse(r servicealloc.Range, ok func(string) bool) (string, bool) {
	if w == nil {
		return "", false
	}
	for _, k := range w.created {
		if k.Range == r && ok(k.Value) {
			return k.Value, true
		}
	}
	return "", false
}

// reserve reserves what wants name, in one transaction, and returns
// those another service holds (then nothing was reserved).
func (w *serviceWrite) reserve(ctx context.Context, wants []want) ([]want, error) {
	if w == nil || len(wants) == 0 {
		return nil, nil // without etcd, svcMu and the scan of services decided
	}
	keys := make([]servicealloc.Key, 0, len(wants))
	for _, x := range wants {
		if !slices.Contains(w.created, x.key) {
			keys = append(keys, x.key)
		}
	}
	var taken []servicealloc.Key
	var err error
	if w.dry {
		taken, err = w.s.alloc.CheckAll(ctx, w.owner, keys)
	} else {
		var created []servicealloc.Key
		created, taken, err = w.s.alloc.ReserveAll(ctx, w.owner, keys)
		w.created = append(w.created, created...)
	}
	if err != nil {
		return nil, err
	}
	var out []want
	for _, x := range wants {
		if slices.Contains(taken, x.key) {
			out = append(out, x)
		}
	}
	return out, nil
}

// serviceLive is what servicealloc.Repairer asks about services.
type serviceLive struct{ s *Server }

var servicesGVR = schema.GroupVersionResource{Version: "v1", Resource: "services"}

func (l serviceLive) resource() (*resources.Resource, error) {
	res, ok := l.s.reg.Get(servicesGVR)
	if !ok {
		return nil, errors.New("services are not served")
	}
	return res, nil
}

func (l serviceLive) Services(ctx context.Context) ([]servicealloc.Held, error) {
	res, err := l.resource()
	if err != nil {
		return nil, err
	}
	page, err := l.s.store.List(ctx, resourcePrefix(res), storage.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make([]servicealloc.Held, 0, len(page.Items))
	for _, o := range page.Items {
		svc := o.(*corev1.Service)
		out = append(out, servicealloc.Held{Owner: ownerOf(svc), Keys: serviceKeys(svc)})
	}
	return out, nil
}

func (l serviceLive) Confirm(ctx context.Context, o servicealloc.Owner, k servicealloc.Key) (bool, error) {
	res, err := l.resource()
	if err != nil {
		return false, err
	}
	obj, err := l.s.store.Get(ctx, objectKey(res, o.Namespace, o.Name), "")
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	svc := obj.(*corev1.Service)
	return string(svc.UID) == o.UID && slices.Contains(serviceKeys(svc), k), nil
}

// DefaultAllocationRepairInterval is how often each server looks for
// leaked service reservations; one leaked by a crash is free after two
// intervals.
const DefaultAllocationRepairInterval = time.Minute

// RunAllocationRepair frees leaked service reservations and restores
// missing ones every interval until ctx ends (package servicealloc).
// Every server may run it: each step is a compare-and-swap.
func (s *Server) RunAllocationRepair(ctx context.Context, interval time.Duration) {
	if s.alloc == nil {
		return
	}
	servicealloc.NewRepairer(s.alloc, serviceLive{s}, s.log.With("component", "servicealloc"),
		servicealloc.ClusterIPs, servicealloc.NodePorts).Run(ctx, interval)
}
