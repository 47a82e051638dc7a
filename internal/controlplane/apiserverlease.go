package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// The kubernetes service lists every live API server, as kube-apiserver's
// lease endpoint reconciler does: each server renews a Lease
// kube-system/apiserver-<id> holding its address, and each one, at every
// renewal, writes the Endpoints and EndpointSlice default/kubernetes from
// the leases that are live. A server that stops cleanly deletes its lease
// and writes them once more without itself; one that dies drops out when
// its lease expires.
const (
	// apiserverIdentityLabel marks the API servers' leases (upstream's).
	apiserverIdentityLabel = "apiserver.kubernetes.io/identity"
	apiserverIdentity      = "kube-apiserver"
	// apiserverEndpointAnnotation is the address:port clients reach a
	// server at.
	apiserverEndpointAnnotation = "wharf.dev/endpoint"
	// A server renews its lease every apiserverLeaseRenew; one not renewed
	// for apiserverLeaseDuration (by the reader's wall clock: masters'
	// clocks are assumed synchronized to well under that) is dropped from
	// the service, and its lease deleted after apiserverLeaseGC.
	apiserverLeaseRenew    = time.Second
	apiserverLeaseDuration = 5 * time.Second
	apiserverLeaseGC       = time.Hour
)

// endpointReconciler keeps this server's lease and the kubernetes service's
// endpoints.
type endpointReconciler struct {
	log      *slog.Logger
	client   kubernetes.Interface
	clk      clock.PassiveClock
	id       string
	endpoint string // host:port
	acquired metav1.MicroTime
	// renewed is the renew time this server last wrote: a lease found with
	// another one and another endpoint is another server's with this id.
	renewed   *metav1.MicroTime
	duplicate bool // that was logged
}

func (r *endpointReconciler) leaseName() string { return "apiserver-" + r.id }

// renew creates or renews this server's lease.
func (r *endpointReconciler) renew(ctx context.Context) error {
	leases := r.client.CoordinationV1().Leases(leaderLeaseNamespace)
	now := metav1.NewMicroTime(r.clk.Now())
	if r.acquired.IsZero() {
		r.acquired = now
	}
	want := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        r.leaseName(),
			Labels:      map[string]string{apiserverIdentityLabel: apiserverIdentity},
			Annotations: map[string]string{apiserverEndpointAnnotation: r.endpoint},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       new(r.id),
			LeaseDurationSeconds: new(int32(apiserverLeaseDuration / time.Second)),
			AcquireTime:          &r.acquired,
			RenewTime:            &now,
		},
	}
	cur, err := leases.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err = leases.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return err
		}
		r.renewed = &now
		return nil
	}
	if err != nil {
		return err
	}
	if r.renewed != nil && cur.Spec.RenewTime != nil && !sameMicro(cur.Spec.RenewTime.Time, r.renewed.Time) &&
		cur.Annotations[apiserverEndpointAnnotation] != r.endpoint && !r.duplicate {
		// Both servers keep renewing; the kubernetes service flaps between them.
		r.log.Error("another server renews this server's lease: both have the same server id (a copied data dir?); remove server-id from one data dir and restart it",
			"lease", r.leaseName(), "other", cur.Annotations[apiserverEndpointAnnotation])
		r.duplicate = true
	}
	want.ResourceVersion = cur.ResourceVersion
	if _, err = leases.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
		return err
	}
	r.renewed = &now
	return nil
}

// sameMicro compares times as a Lease stores them, to the microsecond.
func sameMicro(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

// reconcile writes the kubernetes service's endpoints from the live leases
// and deletes leases expired long ago.
func (r *endpointReconciler) reconcile(ctx context.Context) error {
	list, err := r.client.CoordinationV1().Leases(leaderLeaseNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: apiserverIdentityLabel + "=" + apiserverIdentity,
	})
	if err != nil {
		return err
	}
	now := r.clk.Now()
	for _, l := range list.Items {
		if l.Spec.RenewTime != nil && now.Sub(l.Spec.RenewTime.Time) > apiserverLeaseGC {
			err := r.client.CoordinationV1().Leases(leaderLeaseNamespace).Delete(ctx, l.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				r.log.Warn("could not delete an expired API server lease", "lease", l.Name, "err", err)
			}
		}
	}
	return r.write(ctx, liveEndpoints(list.Items, now))
}

// apiEndpoint is one port's live API server addresses.
type apiEndpoint struct {
	port  int32
	addrs []string // sorted
}

// liveEndpoints groups the publishable addresses of live leases by port,
// ports in ascending order. Loopback addresses are not published (wharf
// up's: every agent relays its pods to the server instead), nor anything
// but IPv4 (the service is single-stack IPv4).
func liveEndpoints(leases []coordinationv1.Lease, now time.Time) []apiEndpoint {
	byPort := map[int32][]string{}
	for _, l := range leases {
		s := l.Spec
		if s.RenewTime == nil || s.LeaseDurationSeconds == nil ||
			!now.Before(s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds)*time.Second)) {
			continue
		}
		host, portStr, err := net.SplitHostPort(l.Annotations[apiserverEndpointAnnotation])
		if err != nil {
			continue
		}
		addr, err := netip.ParseAddr(host)
		port, perr := strconv.ParseUint(portStr, 10, 16)
		if err != nil || perr != nil || port == 0 || !addr.Is4() || addr.IsLoopback() || addr.IsUnspecified() {
			continue
		}
		if !slices.Contains(byPort[int32(port)], addr.String()) {
			byPort[int32(port)] = append(byPort[int32(port)], addr.String())
		}
	}
	var out []apiEndpoint
	for port, addrs := range byPort {
		slices.Sort(addrs)
		out = append(out, apiEndpoint{port: port, addrs: addrs})
	}
	slices.SortFunc(out, func(a, b apiEndpoint) int { return cmp.Compare(a.port, b.port) })
	return out
}

// write makes default/kubernetes list eps, writing only what changed. The
// Endpoints get one subset per port; the EndpointSlice, which has one port
// list for all its endpoints, the lowest port's servers (API servers of a
// cluster all listen on one port unless misconfigured). With no live
// server to publish, objects that do not exist are not created: a cluster
// whose servers are all on loopback has none.
func (r *endpointReconciler) write(ctx context.Context, eps []apiEndpoint) error {
	const name = "kubernetes"
	if len(eps) > 1 {
		r.log.Warn("API servers listen on different ports: the kubernetes EndpointSlice lists only the lowest port's", "ports", len(eps))
	}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}}}
	for _, e := range eps {
		sub := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "https", Port: e.port, Protocol: corev1.ProtocolTCP}}}
		for _, a := range e.addrs {
			sub.Addresses = append(sub.Addresses, corev1.EndpointAddress{IP: a})
		}
		ep.Subsets = append(ep.Subsets, sub)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if len(eps) > 0 {
		slice.Ports = []discoveryv1.EndpointPort{{Name: new("https"), Port: new(eps[0].port), Protocol: new(corev1.ProtocolTCP)}}
		for _, a := range eps[0].addrs {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}})
		}
	}

	endpoints := r.client.CoreV1().Endpoints("default")
	cur, err := endpoints.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && len(eps) > 0:
		if _, err := endpoints.Create(ctx, ep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpoints kubernetes: %w", err)
		}
	case err == nil && endpointsKey(cur.Subsets) != endpointsKey(ep.Subsets):
		ep.ResourceVersion = cur.ResourceVersion
		if _, err := endpoints.Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update endpoints kubernetes: %w", err)
		}
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("get endpoints kubernetes: %w", err)
	}

	sliceClient := r.client.DiscoveryV1().EndpointSlices("default")
	curSlice, err := sliceClient.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && len(eps) > 0:
		if _, err := sliceClient.Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpointslice kubernetes: %w", err)
		}
	case err == nil && sliceKey(curSlice) != sliceKey(slice):
		slice.ResourceVersion = curSlice.ResourceVersion
		if _, err := sliceClient.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update endpointslice kubernetes: %w", err)
		}
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("get endpointslice kubernetes: %w", err)
	}
	return nil
}

// endpointsKey and sliceKey say what the reconciler writes, to skip writes
// that change nothing.
func endpointsKey(subsets []corev1.EndpointSubset) string {
	var b strings.Builder
	for _, s := range subsets {
		for _, p := range s.Ports {
			fmt.Fprintf(&b, "%s/%d/%s:", p.Name, p.Port, p.Protocol)
		}
		var ips []string
		for _, a := range s.Addresses {
			ips = append(ips, a.IP)
		}
		slices.Sort(ips)
		fmt.Fprintf(&b, "%s|%d;", strings.Join(ips, ","), len(s.NotReadyAddresses))
	}
	return b.String()
}

func sliceKey(s *discoveryv1.EndpointSlice) string {
	var b strings.Builder
	for _, p := range s.Ports {
		fmt.Fprintf(&b, "%s/%d/%s:", deref(p.Name), deref(p.Port), deref(p.Protocol))
	}
	var addrs []string
	for _, e := range s.Endpoints {
		addrs = append(addrs, strings.Join(e.Addresses, "+")+"="+strconv.FormatBool(deref(e.Conditions.Ready)))
	}
	slices.Sort(addrs)
	b.WriteString(strings.Join(addrs, ","))
	return b.String()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// run renews and reconciles every apiserverLeaseRenew until ctx ends.
func (r *endpointReconciler) run(ctx context.Context) {
	t := time.NewTicker(apiserverLeaseRenew)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.renew(ctx)
		if err == nil {
			err = r.reconcile(ctx)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing && !apierrors.IsConflict(err):
			r.log.Warn("API server lease or kubernetes endpoints", "err", err)
		case err != nil:
			r.log.Debug("API server lease or kubernetes endpoints", "err", err)
		}
		failing = err != nil && !apierrors.IsConflict(err)
	}
}

// withdraw deletes this server's lease and reconciles without it.
func (r *endpointReconciler) withdraw(ctx context.Context) error {
	err := r.client.CoordinationV1().Leases(leaderLeaseNamespace).Delete(ctx, r.leaseName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete lease %s: %w", r.leaseName(), err)
	}
	return r.reconcile(ctx)
}

// startEndpoint publishes this server in the kubernetes service now, then
// keeps its lease and the service's endpoints until the server stops.
func (s *Server) startEndpoint(ctx context.Context, client kubernetes.Interface, port int) error {
	r := &endpointReconciler{
		log:      s.log.With("component", "apiserver-endpoints"),
		client:   client,
		clk:      clock.RealClock{},
		id:       s.id,
		endpoint: net.JoinHostPort(clientHost(s.opts), strconv.Itoa(port)),
	}
	if addr, err := netip.ParseAddr(clientHost(s.opts)); err != nil || !addr.Is4() {
		s.log.Warn("the kubernetes service gets no endpoint for this server: its address is not an IPv4 address", "address", clientHost(s.opts))
	}
	if err := r.renew(ctx); err != nil {
		return fmt.Errorf("bootstrap lease %s: %w", r.leaseName(), err)
	}
	if err := r.reconcile(ctx); err != nil {
		return fmt.Errorf("bootstrap kubernetes endpoints: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.goRun(func() error { defer close(done); r.run(ctx); return nil })
	s.stopEndpoint = func() {
		cancel()
		<-done
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := r.withdraw(wctx); err != nil {
			r.log.Warn("could not withdraw this server from the kubernetes service", "err", err)
		}
	}
	return nil
}
