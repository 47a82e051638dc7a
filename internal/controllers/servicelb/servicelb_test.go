package servicelb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
)

var (
	base        = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	servicesGVR = v1.SchemeGroupVersion.WithResource("services")
	discard     = slog.New(slog.DiscardHandler)
)

// apiServer gives the fake clientset's services what the controller relies
// on from the real API server (fakeapi covers workloads only): a
// resourceVersion on every write, 409 Conflict on a stale update, status
// updates that change only status and updates that keep it.
type apiServer struct {
	tracker k8stesting.ObjectTracker
	mu      sync.Mutex
	rv      int
}

func (s *apiServer) stamp(svc *v1.Service) {
	s.rv++
	svc.ResourceVersion = fmt.Sprint(s.rv)
	if svc.UID == "" {
		svc.UID = types.UID(keyOf(svc))
	}
}

// add stores svc as it is, status included (a restore, or state left by an
// earlier controller).
func (s *apiServer) add(svc *v1.Service) *v1.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc = svc.DeepCopy()
	s.stamp(svc)
	if err := s.tracker.Add(svc); err != nil {
		panic(err)
	}
	return svc
}

func (s *apiServer) react(action k8stesting.Action) (bool, runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := action.(type) {
	case k8stesting.CreateActionImpl:
		svc := a.GetObject().(*v1.Service).DeepCopy()
		s.stamp(svc)
		if svc.CreationTimestamp.IsZero() {
			svc.CreationTimestamp = metav1.NewTime(time.Now().Truncate(time.Second))
		}
		svc.Status = v1.ServiceStatus{}
		return true, svc.DeepCopy(), s.tracker.Create(servicesGVR, svc, a.GetNamespace())
	case k8stesting.UpdateActionImpl:
		in := a.GetObject().(*v1.Service)
		obj, err := s.tracker.Get(servicesGVR, a.GetNamespace(), in.Name)
		if err != nil {
			return true, nil, err
		}
		stored := obj.(*v1.Service)
		if in.ResourceVersion != stored.ResourceVersion {
			return true, nil, apierrors.NewConflict(servicesGVR.GroupResource(), in.Name, errors.New("the object has been modified"))
		}
		out := in.DeepCopy()
		if a.GetSubresource() == "status" {
			out = stored.DeepCopy()
			out.Status = *in.Status.DeepCopy()
		} else {
			out.Status = stored.Status
		}
		s.stamp(out)
		return true, out.DeepCopy(), s.tracker.Update(servicesGVR, out, a.GetNamespace())
	}
	return false, nil, nil
}

func newClient() (*fake.Clientset, *apiServer) {
	client := fake.NewClientset()
	api := &apiServer{tracker: client.Tracker()}
	client.PrependReactor("create", "services", api.react)
	client.PrependReactor("update", "services", api.react)
	return client, api
}

type opt func(*v1.Service)

// lb is a LoadBalancer service in namespace ns.
func lb(name string, opts ...opt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(base)},
		Spec: v1.ServiceSpec{
			Type:  v1.ServiceTypeLoadBalancer,
			Ports: []v1.ServicePort{{Port: 80, Protocol: v1.ProtocolTCP}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func age(secondsAfterBase int) opt {
	return func(s *v1.Service) {
		s.CreationTimestamp = metav1.NewTime(base.Add(time.Duration(secondsAfterBase) * time.Second))
	}
}

// status gives the service ingress entries, as this controller writes them.
func status(ips ...string) opt {
	return func(s *v1.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip, IPMode: ptr.To(v1.LoadBalancerIPModeVIP)})
		}
	}
}

func annotated(v string) opt {
	return func(s *v1.Service) { s.Annotations = map[string]string{IPsAnnotation: v} }
}

func specIP(v string) opt { return func(s *v1.Service) { s.Spec.LoadBalancerIP = v } }

func class(c string) opt { return func(s *v1.Service) { s.Spec.LoadBalancerClass = &c } }

func clusterIP(s *v1.Service) {
	s.Spec.Type = v1.ServiceTypeClusterIP
	s.Spec.LoadBalancerClass = nil
}

// harness is a controller whose cache the test moves forward by hand
// (catchUp), playing the informer: the cache lags behind the API server
// exactly as long as the test says.
type harness struct {
	c       *Controller
	client  *fake.Clientset
	api     *apiServer
	indexer cache.Indexer
	rec     *fakeapi.Recorder
}

func newHarness(t *testing.T, poolCIDRs []string, svcs ...*v1.Service) *harness {
	t.Helper()
	p, err := ParsePool(poolCIDRs)
	if err != nil {
		t.Fatal(err)
	}
	client, api := newClient()
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := &fakeapi.Recorder{}
	h := &harness{
		c:       New(discard, client, factory, rec, p),
		client:  client,
		api:     api,
		indexer: factory.Core().V1().Services().Informer().GetIndexer(),
		rec:     rec,
	}
	for _, s := range svcs {
		api.add(s)
	}
	h.catchUp(t)
	return h
}

// catchUp brings the cache up to the API server's services, calling the
// controller's handlers as the informer would.
func (h *harness) catchUp(t *testing.T) {
	t.Helper()
	l, err := h.client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range l.Items {
		svc := &l.Items[i]
		seen[keyOf(svc)] = true
		old, ok, _ := h.indexer.GetByKey(keyOf(svc))
		switch {
		case !ok:
			h.indexer.Add(svc)
			h.c.serviceAdded(svc)
		case old.(*v1.Service).ResourceVersion != svc.ResourceVersion:
			h.indexer.Update(svc)
			h.c.serviceUpdated(old, svc)
		}
	}
	for _, obj := range h.indexer.List() {
		if svc := obj.(*v1.Service); !seen[keyOf(svc)] {
			h.indexer.Delete(svc)
			h.c.serviceDeleted(svc)
		}
	}
}

// settle syncs queued services and catches the cache up until nothing is
// left to do.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for range 1000 {
		h.catchUp(t)
		if h.c.queue.Len() == 0 {
			return
		}
		key, _ := h.c.queue.Get()
		err := h.c.sync(ctx, key)
		h.c.queue.Done(key)
		if err != nil {
			t.Fatalf("sync %s: %v", key, err)
		}
	}
	t.Fatal("the controller does not settle")
}

// addresses renders each service's ingress as the API server has it, by
// name: "" for none, ipMode shown when it is not VIP.
func (h *harness) addresses(t *testing.T) map[string]string {
	t.Helper()
	l, err := h.client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, svc := range l.Items {
		var ips []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IPMode == nil || *in.IPMode != v1.LoadBalancerIPModeVIP {
				ips = append(ips, in.IP+"(no VIP)")
			} else {
				ips = append(ips, in.IP)
			}
		}
		out[svc.Name] = strings.Join(ips, ",")
	}
	return out
}

func (h *harness) writes() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" {
			n++
		}
	}
	return n
}

func (h *harness) get(t *testing.T, name string) *v1.Service {
	t.Helper()
	svc, err := h.client.CoreV1().Services("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func assigned(name, ip string) fakeapi.Event {
	return fakeapi.Event{Object: "ns/" + name, Type: v1.EventTypeNormal, Reason: ReasonAllocated, Message: "Assigned IP " + ip}
}

func failed(name, msg string) fakeapi.Event {
	return fakeapi.Event{Object: "ns/" + name, Type: v1.EventTypeWarning, Reason: ReasonFailed, Message: msg}
}

func TestSync(t *testing.T) {
	pool28 := []string{"10.1.2.0/28"}
	tests := []struct {
		name string
		pool []string
		svcs []*v1.Service
		// syncs are the services synced, in order; stale leaves the cache
		// as it was, else it catches up after each sync.
		syncs      []string
		stale      bool
		want       map[string]string
		wantEvents []fakeapi.Event
	}{
		{
			name: "lowest free address", pool: pool28,
			svcs:       []*v1.Service{lb("a"), lb("b", status("10.1.2.1")), lb("c")},
			syncs:      []string{"a", "b", "c"},
			want:       map[string]string{"a": "10.1.2.2", "b": "10.1.2.1", "c": "10.1.2.3"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.2"), assigned("c", "10.1.2.3")},
		},
		{
			name:  "network and broadcast skipped below /31, every address of a /31 or /32",
			pool:  []string{"10.9.0.0/31", "10.1.2.0/30", "10.8.0.7/32"},
			svcs:  []*v1.Service{lb("a"), lb("b"), lb("c"), lb("d"), lb("e"), lb("f")},
			syncs: []string{"a", "b", "c", "d", "e", "f"},
			want:  map[string]string{"a": "10.1.2.1", "b": "10.1.2.2", "c": "10.8.0.7", "d": "10.9.0.0", "e": "10.9.0.1", "f": ""},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.1"), assigned("b", "10.1.2.2"), assigned("c", "10.8.0.7"),
				assigned("d", "10.9.0.0"), assigned("e", "10.9.0.1"),
				failed("f", "no free address in the load balancer pool 10.1.2.0/30,10.8.0.7/32,10.9.0.0/31 (5 addresses, all held)")},
		},
		{
			name: "a stale cache still hands out distinct addresses", pool: pool28,
			svcs: []*v1.Service{lb("a"), lb("b"), lb("c")}, syncs: []string{"a", "b", "c", "a", "b"}, stale: true,
			want:       map[string]string{"a": "10.1.2.1", "b": "10.1.2.2", "c": "10.1.2.3"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.1"), assigned("b", "10.1.2.2"), assigned("c", "10.1.2.3")},
		},
		{
			name: "asked by annotation", pool: pool28,
			svcs: []*v1.Service{lb("a", annotated("10.1.2.9")), lb("b")}, syncs: []string{"a", "b"},
			want:       map[string]string{"a": "10.1.2.9", "b": "10.1.2.1"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.9"), assigned("b", "10.1.2.1")},
		},
		{
			name: "asked by spec.loadBalancerIP", pool: pool28,
			svcs: []*v1.Service{lb("a", specIP("10.1.2.7"))}, syncs: []string{"a"},
			want: map[string]string{"a": "10.1.2.7"}, wantEvents: []fakeapi.Event{assigned("a", "10.1.2.7")},
		},
		{
			name: "the annotation wins over spec.loadBalancerIP, its first IPv4 address is used", pool: pool28,
			svcs:  []*v1.Service{lb("a", annotated(" fd00::1, 10.1.2.5,10.1.2.6"), specIP("10.1.2.7"))},
			syncs: []string{"a"},
			want:  map[string]string{"a": "10.1.2.5"}, wantEvents: []fakeapi.Event{assigned("a", "10.1.2.5")},
		},
		{
			name: "asked address not in the pool", pool: pool28,
			svcs:  []*v1.Service{lb("a", annotated("10.1.3.3")), lb("b", specIP("10.1.2.0")), lb("c", specIP("10.1.2.15"))},
			syncs: []string{"a", "b", "c"},
			want:  map[string]string{"a": "", "b": "", "c": ""},
			wantEvents: []fakeapi.Event{
				failed("a", "10.1.3.3 is not in the load balancer pool 10.1.2.0/28"),
				failed("b", "10.1.2.0 is not in the load balancer pool 10.1.2.0/28"),
				failed("c", "10.1.2.15 is not in the load balancer pool 10.1.2.0/28"),
			},
		},
		{
			name: "asked address held by another service", pool: pool28,
			svcs:       []*v1.Service{lb("a", specIP("10.1.2.3")), lb("other", status("10.1.2.3"))},
			syncs:      []string{"a", "other", "a"},
			want:       map[string]string{"a": "", "other": "10.1.2.3"},
			wantEvents: []fakeapi.Event{failed("a", "10.1.2.3 is held by service ns/other")},
		},
		{
			name: "asked address reserved for another service the cache shows without it", pool: pool28,
			svcs: []*v1.Service{lb("b"), lb("a", annotated("10.1.2.1"))}, syncs: []string{"b", "a"}, stale: true,
			want:       map[string]string{"a": "", "b": "10.1.2.1"},
			wantEvents: []fakeapi.Event{assigned("b", "10.1.2.1"), failed("a", "10.1.2.1 is held by service ns/b")},
		},
		{
			name: "unreadable requests", pool: pool28,
			svcs:  []*v1.Service{lb("a", annotated("10.1.2.3,nope")), lb("b", annotated("fd00::1")), lb("c", specIP("fd00::2")), lb("d", specIP("x"))},
			syncs: []string{"a", "b", "c", "d"},
			want:  map[string]string{"a": "", "b": "", "c": "", "d": ""},
			wantEvents: []fakeapi.Event{
				failed("a", `annotation wharf.dev/load-balancer-ips: "nope" is not an IP address`),
				failed("b", "annotation wharf.dev/load-balancer-ips has no IPv4 address (the load balancer pool is IPv4 only)"),
				failed("c", "spec.loadBalancerIP fd00::2 is not an IPv4 address (the load balancer pool is IPv4 only)"),
				failed("d", `spec.loadBalancerIP "x" is not an IP address`),
			},
		},
		{
			name: "asking for another address moves the service", pool: pool28,
			svcs:       []*v1.Service{lb("a", status("10.1.2.1"), annotated("10.1.2.4")), lb("b")},
			syncs:      []string{"a", "b"},
			want:       map[string]string{"a": "10.1.2.4", "b": "10.1.2.1"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.4"), assigned("b", "10.1.2.1")},
		},
		{
			name: "asking for an address it cannot have takes the old one away", pool: pool28,
			svcs:       []*v1.Service{lb("a", status("10.1.2.1"), annotated("10.9.9.9"))},
			syncs:      []string{"a"},
			want:       map[string]string{"a": ""},
			wantEvents: []fakeapi.Event{failed("a", "10.9.9.9 is not in the load balancer pool 10.1.2.0/28")},
		},
		{
			name: "an address that left the pool is replaced", pool: pool28,
			svcs:       []*v1.Service{lb("a", status("10.7.0.1"))},
			syncs:      []string{"a"},
			want:       map[string]string{"a": "10.1.2.1"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.1")},
		},
		{
			name: "an address that left a full pool is removed", pool: []string{"10.1.2.1/32"},
			svcs:       []*v1.Service{lb("a", status("10.1.2.1")), lb("b", status("10.7.0.1"))},
			syncs:      []string{"a", "b"},
			want:       map[string]string{"a": "10.1.2.1", "b": ""},
			wantEvents: []fakeapi.Event{failed("b", "no free address in the load balancer pool 10.1.2.1/32 (1 address, all held)")},
		},
		{
			name: "a kept address gets ipMode VIP, without an event", pool: pool28,
			svcs: []*v1.Service{func() *v1.Service {
				s := lb("a")
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "10.1.2.5"}}
				return s
			}()},
			syncs: []string{"a"},
			want:  map[string]string{"a": "10.1.2.5"},
		},
		{
			name: "no pool: a waiting service is told why, one with an address is left alone", pool: nil,
			svcs:       []*v1.Service{lb("a"), lb("b", status("192.0.2.1"))},
			syncs:      []string{"a", "b", "a"},
			want:       map[string]string{"a": "", "b": "192.0.2.1"},
			wantEvents: []fakeapi.Event{failed("a", "this cluster has no load balancer pool (wharf server --lb-cidr)")},
		},
		{
			name: "a service that is no longer a LoadBalancer loses its ingress", pool: pool28,
			svcs:  []*v1.Service{lb("a", status("10.1.2.1", "192.0.2.1"), clusterIP), lb("b", clusterIP)},
			syncs: []string{"a", "b"},
			want:  map[string]string{"a": "", "b": ""},
		},
		{
			name: "another class is skipped; only our pool's addresses leave its status", pool: pool28,
			svcs: []*v1.Service{
				lb("a", class("example.com/other")),
				lb("b", class("example.com/other"), status("10.1.2.1", "192.0.2.1")),
				lb("c", class(Class)),
			},
			syncs:      []string{"a", "b", "c"},
			want:       map[string]string{"a": "", "b": "192.0.2.1", "c": "10.1.2.1"},
			wantEvents: []fakeapi.Event{assigned("c", "10.1.2.1")},
		},
		{
			name: "one address in two statuses: the older service keeps it", pool: pool28,
			svcs:       []*v1.Service{lb("a", age(1), status("10.1.2.1")), lb("b", age(0), status("10.1.2.1")), lb("c", status("10.1.2.2")), lb("d", status("10.1.2.2"))},
			syncs:      []string{"a", "b", "c", "d"},
			want:       map[string]string{"a": "10.1.2.3", "b": "10.1.2.1", "c": "10.1.2.2", "d": "10.1.2.4"},
			wantEvents: []fakeapi.Event{assigned("a", "10.1.2.3"), assigned("d", "10.1.2.4")},
		},
		{
			name: "an unknown service is nothing to do", pool: pool28,
			syncs: []string{"gone"}, want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.pool, tt.svcs...)
			for _, name := range tt.syncs {
				if err := h.c.sync(context.Background(), "ns/"+name); err != nil {
					t.Fatalf("sync %s: %v", name, err)
				}
				if !tt.stale {
					h.catchUp(t)
				}
			}
			if diff := cmp.Diff(tt.want, h.addresses(t)); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, h.rec.Events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// A full pool leaves services pending, told once; deleting a service gives
// its address to one of them.
func TestExhaustedThenFreed(t *testing.T) {
	h := newHarness(t, []string{"10.1.2.0/30"}, lb("a", age(0)), lb("b", age(1)), lb("c", age(2)))
	h.settle(t)
	full := failed("c", "no free address in the load balancer pool 10.1.2.0/30 (2 addresses, all held)")
	want := []fakeapi.Event{assigned("a", "10.1.2.1"), assigned("b", "10.1.2.2"), full}
	if diff := cmp.Diff(want, h.rec.Events()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// Resyncs of unchanged services tell nothing new and write nothing.
	writes := h.writes()
	for _, n := range []string{"a", "b", "c", "c"} {
		if err := h.c.sync(context.Background(), "ns/"+n); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(h.rec.Events()); got != len(want) || h.writes() != writes {
		t.Fatalf("resync: %d events, %d writes; want %d, %d", got, h.writes(), len(want), writes)
	}

	if err := h.client.CoreV1().Services("ns").Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	if diff := cmp.Diff(map[string]string{"b": "10.1.2.2", "c": "10.1.2.1"}, h.addresses(t)); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	want = append(want, assigned("c", "10.1.2.1"))
	if diff := cmp.Diff(want, h.rec.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// Changes to a service that has an address release it, and a waiting
// service gets it.
func TestRelease(t *testing.T) {
	tests := []struct {
		name   string
		change func(*v1.Service)
		want   map[string]string
	}{
		{"type ClusterIP", clusterIP, map[string]string{"a": "", "b": "10.1.2.1"}},
		{"another class", class("example.com/other"), map[string]string{"a": "", "b": "10.1.2.1"}},
		{"asks for an address outside the pool", annotated("10.9.9.9"), map[string]string{"a": "", "b": "10.1.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, []string{"10.1.2.1/32"}, lb("a", age(0)), lb("b", age(1)))
			h.settle(t)
			if diff := cmp.Diff(map[string]string{"a": "10.1.2.1", "b": ""}, h.addresses(t)); diff != "" {
				t.Fatalf("before (-want +got):\n%s", diff)
			}
			a := h.get(t, "a")
			tt.change(a)
			if _, err := h.client.CoreV1().Services("ns").Update(context.Background(), a, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			h.settle(t)
			if diff := cmp.Diff(tt.want, h.addresses(t)); diff != "" {
				t.Errorf("after (-want +got):\n%s", diff)
			}
		})
	}
}

// A new controller over the objects an earlier one left changes nothing.
func TestRestartKeepsAddresses(t *testing.T) {
	pool := []string{"10.1.2.0/29"}
	svcs := []*v1.Service{
		lb("a", age(3), status("10.1.2.1")), lb("b", age(1), annotated("10.1.2.5")), lb("c", age(2), specIP("10.1.2.6")),
		lb("d", age(4), status("10.1.2.1")), // loses its copy of a's address
		lb("e", age(5), status("10.7.0.1")), // out of the pool
		lb("f", age(6)), lb("g", age(7)),    // one of d to g finds the pool full
		lb("other", class("example.com/other"), status("192.0.2.1")),
	}
	first := newHarness(t, pool, svcs...)
	first.settle(t)
	want := first.addresses(t)
	var left []*v1.Service
	l, _ := first.client.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	for i := range l.Items {
		left = append(left, &l.Items[i])
	}

	second := newHarness(t, pool, left...)
	second.settle(t)
	if diff := cmp.Diff(want, second.addresses(t)); diff != "" {
		t.Errorf("addresses after a restart (-before +after):\n%s", diff)
	}
	if n := second.writes(); n != 0 {
		t.Errorf("the restarted controller wrote %d times, want none", n)
	}
	// Only the service still waiting is told why, again.
	var wantEvents []fakeapi.Event
	for name, ip := range want {
		if ip == "" {
			wantEvents = append(wantEvents, failed(name, "no free address in the load balancer pool 10.1.2.0/29 (6 addresses, all held)"))
		}
	}
	if len(wantEvents) != 1 {
		t.Fatalf("before the restart: %v, want one service waiting", want)
	}
	if diff := cmp.Diff(wantEvents, second.rec.Events()); diff != "" {
		t.Errorf("events after a restart (-want +got):\n%s", diff)
	}
}

// A conflicting write keeps the address reserved for the retry.
func TestConflictKeepsReservation(t *testing.T) {
	h := newHarness(t, []string{"10.1.2.0/28"}, lb("a"), lb("b"))
	conflicts := 1
	h.client.PrependReactor("update", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(servicesGVR.GroupResource(), "a", errors.New("modified"))
		}
		return false, nil, nil
	})
	if err := h.c.sync(context.Background(), "ns/a"); !apierrors.IsConflict(err) {
		t.Fatalf("first sync: %v, want a conflict", err)
	}
	for _, n := range []string{"b", "a"} {
		if err := h.c.sync(context.Background(), "ns/"+n); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]string{"a": "10.1.2.1", "b": "10.1.2.2"}, h.addresses(t)); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
}

// Workers syncing many new services at once on a cache that never catches
// up never give one address twice.
func TestConcurrentWorkersStaleCache(t *testing.T) {
	const services, free = 40, 30 // a /27 has 30 usable addresses
	var svcs []*v1.Service
	for i := range services {
		svcs = append(svcs, lb(fmt.Sprintf("s%02d", i)))
	}
	h := newHarness(t, []string{"10.1.2.0/27"}, svcs...)
	for _, s := range svcs {
		h.c.queue.Add(keyOf(s))
	}
	h.c.queue.ShutDown() // workers drain it, then stop
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for controllerutil.ProcessNext(context.Background(), discard, h.c.queue, h.c.sync) {
			}
		})
	}
	wg.Wait()

	got := h.addresses(t)
	seen := map[string]string{}
	pending := 0
	for name, ip := range got {
		if ip == "" {
			pending++
			continue
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s given to %s and %s", ip, other, name)
		}
		seen[ip] = name
		if !netip.MustParsePrefix("10.1.2.0/27").Contains(netip.MustParseAddr(ip)) {
			t.Errorf("%s got %s, outside the pool", name, ip)
		}
	}
	if len(seen) != free || pending != services-free {
		t.Errorf("%d services got an address, %d wait; want %d and %d", len(seen), pending, free, services-free)
	}

	// Caught up, nobody moves.
	writes := h.writes()
	h.catchUp(t)
	for _, s := range svcs {
		if err := h.c.sync(context.Background(), keyOf(s)); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(got, h.addresses(t)); diff != "" || h.writes() != writes {
		t.Errorf("resync after catching up: %d writes, addresses (-before +after):\n%s", h.writes()-writes, diff)
	}
}

// The controller with its informer and workers: concurrent creates get the
// lowest addresses, once each, and a deleted service's address is reused.
func TestRun(t *testing.T) {
	const n = 12
	client, _ := newClient()
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := &fakeapi.Recorder{}
	pool, _ := ParsePool([]string{"10.1.2.0/28"})
	c := New(discard, client, factory, rec, pool)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 4); close(done) }()
	defer func() { cancel(); <-done }()
	factory.Start(ctx.Done())

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := client.CoreV1().Services("ns").Create(ctx, lb(fmt.Sprintf("s%02d", i)), metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := waitAddresses(t, client, n)
	var ips, want []string
	for _, ip := range got {
		ips = append(ips, ip)
	}
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("10.1.2.%d", i))
	}
	slices.SortFunc(ips, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	if diff := cmp.Diff(want, ips); diff != "" {
		t.Fatalf("addresses (-want +got):\n%s", diff)
	}

	freed := got["s05"]
	if err := client.CoreV1().Services("ns").Delete(ctx, "s05", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("ns").Create(ctx, lb("late"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitAddresses(t, client, n); got["late"] != freed {
		t.Errorf("late got %q, want the freed %s", got["late"], freed)
	}
}

// waitAddresses waits until n services have an address and returns them by name.
func waitAddresses(t *testing.T, client *fake.Clientset, n int) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, total := addressesAndCount(t, client)
		if len(got) == n && total == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s %d of %d services have an address: %v", len(got), total, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParsePool(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{in: nil, want: nil},
		{in: []string{"10.1.2.0/28"}, want: []string{"10.1.2.0/28"}},
		{in: []string{" 10.9.0.0/31", "10.1.2.0/28 ", "10.1.3.7/32"}, want: []string{"10.1.2.0/28", "10.1.3.7/32", "10.9.0.0/31"}},
		{in: []string{"10.1.2.0/28", "nope"}, wantErr: `load balancer CIDR "nope"`},
		{in: []string{"10.1.2.3"}, wantErr: `load balancer CIDR "10.1.2.3"`},
		{in: []string{""}, wantErr: `load balancer CIDR ""`},
		{in: []string{"10.1.2.0/33"}, wantErr: `load balancer CIDR "10.1.2.0/33"`},
		{in: []string{"10.1.2.3/28"}, wantErr: `load balancer CIDR "10.1.2.3/28": host bits set (did you mean 10.1.2.0/28?)`},
		{in: []string{"fd00::/64"}, wantErr: `load balancer CIDR "fd00::/64": not an IPv4 prefix`},
		{in: []string{"::ffff:10.1.2.0/120"}, wantErr: `load balancer CIDR "::ffff:10.1.2.0/120": not an IPv4 prefix`},
		{in: []string{"10.0.0.0/8", "10.1.2.0/28", "10.0.0.0/24"}, wantErr: "load balancer CIDRs 10.0.0.0/8 and 10.0.0.0/24 overlap"},
		{in: []string{"10.1.2.0/24", "10.5.0.0/16", "10.1.2.128/25"}, wantErr: "load balancer CIDRs 10.1.2.0/24 and 10.1.2.128/25 overlap"},
		{in: []string{"10.1.2.0/28", "10.1.2.0/28"}, wantErr: "load balancer CIDRs 10.1.2.0/28 and 10.1.2.0/28 overlap"},
		{in: []string{"127.77.1.0/28"}, wantErr: `load balancer CIDR "127.77.1.0/28": not a unicast range`},
		{in: []string{"169.254.0.0/28"}, wantErr: `load balancer CIDR "169.254.0.0/28": not a unicast range`},
		{in: []string{"224.0.0.0/28"}, wantErr: `load balancer CIDR "224.0.0.0/28": not a unicast range`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			got, err := ParsePool(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePool(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if diff := cmp.Diff(tt.want, s); diff != "" {
				t.Errorf("ParsePool(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPool(t *testing.T) {
	tests := []struct {
		cidrs []string
		held  []string
		size  uint64
		want  string // "" when full
	}{
		{[]string{"10.1.2.0/30"}, nil, 2, "10.1.2.1"},
		{[]string{"10.1.2.0/30"}, []string{"10.1.2.1", "10.1.2.2"}, 2, ""},
		{[]string{"10.1.2.0/31"}, []string{"10.1.2.0"}, 2, "10.1.2.1"},
		{[]string{"10.1.2.9/32"}, nil, 1, "10.1.2.9"},
		{[]string{"255.255.255.254/31"}, []string{"255.255.255.254", "255.255.255.255"}, 2, ""},
		{[]string{"255.255.255.252/30"}, []string{"255.255.255.253"}, 2, "255.255.255.254"},
		{[]string{"10.0.0.0/8"}, nil, 1<<24 - 2, "10.0.0.1"},
		{[]string{"0.0.0.0/0"}, nil, 1<<32 - 2, "0.0.0.1"},
		{nil, nil, 0, ""},
	}
	for _, tt := range tests {
		p, err := ParsePool(tt.cidrs)
		if err != nil {
			t.Fatal(err)
		}
		pl := newPool(p)
		held := map[netip.Addr]string{}
		for _, a := range tt.held {
			held[netip.MustParseAddr(a)] = "x"
		}
		a, ok := pl.lowestFree(held)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want || pl.size() != tt.size {
			t.Errorf("pool %v holding %v: lowest free %q, size %d; want %q, %d", tt.cidrs, tt.held, got, pl.size(), tt.want, tt.size)
		}
	}
	pl := newPool([]netip.Prefix{netip.MustParsePrefix("10.1.2.0/28")})
	for a, want := range map[string]bool{"10.1.2.0": false, "10.1.2.1": true, "10.1.2.14": true, "10.1.2.15": false, "10.1.2.16": false, "fd00::1": false} {
		if got := pl.contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("10.1.2.0/28 contains %s = %v, want %v", a, got, want)
		}
	}
}

func FuzzParsePool(f *testing.F) {
	for _, s := range []string{"10.1.2.0/28", "10.1.2.0/28,10.1.3.0/30", "10.0.0.0/8,10.1.0.0/16", "fd00::/64", "10.1.2.3/28", "255.255.255.255/32", "0.0.0.0/0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pool, err := ParsePool(strings.Split(s, ","))
		if err != nil {
			return
		}
		for i, p := range pool {
			if !p.Addr().Is4() || p.Masked() != p {
				t.Fatalf("ParsePool(%q) returned %s", s, p)
			}
			if i > 0 && (comparePrefixes(pool[i-1], p) >= 0 || pool[i-1].Overlaps(p)) {
				t.Fatalf("ParsePool(%q): %s and %s out of order or overlapping", s, pool[i-1], p)
			}
		}
		pl := newPool(pool)
		if a, ok := pl.lowestFree(nil); ok != (len(pool) > 0) || (ok && !pl.contains(a)) {
			t.Fatalf("pool %s: lowest free %v %v", pl, a, ok)
		}
	})
}

func FuzzRequested(f *testing.F) {
	for _, s := range []string{"10.1.2.3", "fd00::1, 10.1.2.3", "10.1.2.3,", " , ", "nope", "::ffff:10.1.2.3", "fe80::1%eth0,10.0.0.1"} {
		f.Add(s, "10.1.2.4")
	}
	f.Fuzz(func(t *testing.T, annotation, specIP string) {
		svc := lb("a", annotated(annotation))
		svc.Spec.LoadBalancerIP = specIP
		a, err := requested(svc)
		if err != nil {
			if a.IsValid() {
				t.Fatalf("requested(%q, %q) = %v and error %v", annotation, specIP, a, err)
			}
			return
		}
		if a.IsValid() && !a.Is4() {
			t.Fatalf("requested(%q, %q) = %v, not IPv4", annotation, specIP, a)
		}
		if strings.TrimSpace(annotation) != "" && a.IsValid() && !strings.Contains(annotation, a.String()) {
			t.Fatalf("requested(%q, %q) = %v, not from the annotation", annotation, specIP, a)
		}
	})
}
