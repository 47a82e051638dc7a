package services

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/testwait"
)

// recorder is a Sink that keeps what it was told, and counts syncs.
type recorder struct {
	mu       sync.Mutex
	services map[string]string // ns/name -> cluster IP
	slices   map[string]int    // ns/name -> endpoints
	syncs    int
	atSync   []int // services known at each sync
}

func (r *recorder) UpdateService(s *corev1.Service) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[s.Namespace+"/"+s.Name] = s.Spec.ClusterIP
}

func (r *recorder) DeleteService(ns, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.services, ns+"/"+name)
}

func (r *recorder) UpdateEndpointSlice(es *discoveryv1.EndpointSlice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slices[es.Namespace+"/"+es.Name] = len(es.Endpoints)
}

func (r *recorder) DeleteEndpointSlice(ns, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.slices, ns+"/"+name)
}

func (r *recorder) sync(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	r.atSync = append(r.atSync, len(r.services))
	return nil
}

func (r *recorder) state() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.services, r.slices)
}

func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "b"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.11"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}}},
	)
	rec := &recorder{services: map[string]string{}, slices: map[string]int{}}
	w := New(Config{Client: client, Sinks: []Sink{rec}, Sync: rec.sync})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	list, err := w.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[default/a shop/b]" {
		t.Errorf("Services() = %v", names)
	}
	testwait.For(t, "the first sync", func() (bool, string) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.syncs >= 1, "no sync"
	})
	rec.mu.Lock()
	if rec.atSync[0] != 2 {
		t.Errorf("the first sync saw %d services, want both: it must come after the first lists", rec.atSync[0])
	}
	before := rec.syncs
	rec.mu.Unlock()

	// A change reaches the sink and brings a sync; a delete too.
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}, {Addresses: []string{"10.244.0.6"}}}}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services("shop").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(map[string]string{"default/a": "10.96.0.10"}, map[string]int{"default/a": 2})
	testwait.For(t, "the changes at the sink", func() (bool, string) { s := rec.state(); return s == want, s })
	testwait.For(t, "a sync after the changes", func() (bool, string) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.syncs > before, fmt.Sprint(rec.syncs, " syncs")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestServicesWaitsForTheFirstList: before Run has read them, Services
// waits, and gives up with its context.
func TestServicesWaitsForTheFirstList(t *testing.T) {
	w := New(Config{Client: fake.NewClientset()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Services(ctx); err == nil {
		t.Error("Services returned before the services were read")
	}
}
