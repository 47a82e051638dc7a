package servicelb

import (
	"context"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/wire"
)

// A cluster made without a pool gets one from the ConfigMap, without a
// restart; a change moves its services into the new pool; a ConfigMap
// overlapping the cluster's own ranges is refused; deleting the ConfigMap
// goes back to the flags' pool (here: none, addresses kept as they are).
func TestPoolConfigMap(t *testing.T) {
	client, _ := newClient()
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(discard, client, factory, &fakeapi.Recorder{}, nil,
		WithPoolConfigMap(netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("10.244.0.0/16")))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done }()
	factory.Start(ctx.Done())

	for _, name := range []string{"a", "b"} {
		if _, err := client.CoreV1().Services("ns").Create(ctx, lb(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := addressesOf(t, client); len(got) != 0 {
		t.Fatalf("addresses without a pool: %v", got)
	}
	cms := client.CoreV1().ConfigMaps(wire.LoadBalancerPoolNamespace)
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: wire.LoadBalancerPoolConfigMap},
		Data: map[string]string{wire.LoadBalancerPoolKey: "192.0.2.16/28"}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Which service gets which address depends on the order the queue
	// takes them in: compare the sets.
	holds := func(want ...string) func() bool {
		return func() bool {
			got := addressesOf(t, client)
			return len(got) == 2 && (got["a"] == want[0] && got["b"] == want[1] || got["a"] == want[1] && got["b"] == want[0])
		}
	}
	waitFor(t, "addresses of the ConfigMap's pool", holds("192.0.2.17", "192.0.2.18"))

	cm.Data[wire.LoadBalancerPoolKey] = "192.0.2.32/28, 192.0.2.64/30"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "addresses moved to the new pool", holds("192.0.2.33", "192.0.2.34"))
	moved := addressesOf(t, client)

	for _, bad := range []string{"10.96.1.0/28", "10.244.9.0/28", "not-a-cidr", "192.0.2.1/28"} {
		cm.Data[wire.LoadBalancerPoolKey] = bad
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the refused pool "+bad+" replaced by the flags' (none)", func() bool { return len(c.pool()) == 0 })
		cm.Data[wire.LoadBalancerPoolKey] = "192.0.2.32/28"
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the good pool back", func() bool { return c.pool().String() == "192.0.2.32/28" })
	}
	if got := addressesOf(t, client); got["a"] != moved["a"] || got["b"] != moved["b"] {
		t.Errorf("after refused pools: %v, want the addresses kept (%v)", got, moved)
	}

	if err := cms.Delete(ctx, wire.LoadBalancerPoolConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flags' pool (none) after the ConfigMap's delete", func() bool { return len(c.pool()) == 0 })
}

// addressesOf returns the services' addresses by name.
func addressesOf(t *testing.T, client *fake.Clientset) map[string]string {
	got, _ := addressesAndCount(t, client)
	return got
}

// addressesAndCount returns the services' addresses by name, and how
// many services there are.
func addressesAndCount(t *testing.T, client *fake.Clientset) (map[string]string, int) {
	t.Helper()
	l, err := client.CoreV1().Services("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range l.Items {
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			got[s.Name] = s.Status.LoadBalancer.Ingress[0].IP
		}
	}
	return got, len(l.Items)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
