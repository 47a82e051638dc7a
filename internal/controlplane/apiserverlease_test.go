package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestLiveEndpoints(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lease := func(endpoint string, age time.Duration) coordinationv1.Lease {
		return coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{apiserverEndpointAnnotation: endpoint}},
			Spec: coordinationv1.LeaseSpec{
				RenewTime:            &metav1.MicroTime{Time: now.Add(-age)},
				LeaseDurationSeconds: new(int32(5)),
			},
		}
	}
	tests := []struct {
		name   string
		leases []coordinationv1.Lease
		want   string
	}{
		{"none", nil, ""},
		{"one live", []coordinationv1.Lease{lease("10.0.0.1:6443", time.Second)}, "6443=10.0.0.1"},
		{"sorted, duplicates once", []coordinationv1.Lease{lease("10.0.0.3:6443", 0), lease("10.0.0.1:6443", 0), lease("10.0.0.3:6443", 0)}, "6443=10.0.0.1,10.0.0.3"},
		{"expired dropped", []coordinationv1.Lease{lease("10.0.0.1:6443", 0), lease("10.0.0.2:6443", 5*time.Second)}, "6443=10.0.0.1"},
		{"just alive kept", []coordinationv1.Lease{lease("10.0.0.2:6443", 5*time.Second-time.Nanosecond)}, "6443=10.0.0.2"},
		{"loopback, IPv6, unspecified and garbage not published", []coordinationv1.Lease{
			lease("127.0.0.1:6443", 0), lease("[fd00::1]:6443", 0), lease("0.0.0.0:6443", 0), lease("nonsense", 0), lease("10.0.0.1:0", 0), lease("10.0.0.1:99999", 0),
		}, ""},
		{"grouped by port", []coordinationv1.Lease{lease("10.0.0.2:7443", 0), lease("10.0.0.1:6443", 0), lease("10.0.0.3:7443", 0)}, "6443=10.0.0.1 7443=10.0.0.2,10.0.0.3"},
		{"no renew time", []coordinationv1.Lease{{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{apiserverEndpointAnnotation: "10.0.0.1:6443"}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatEndpoints(liveEndpoints(tt.leases, now)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func formatEndpoints(eps []apiEndpoint) string {
	var out []string
	for _, e := range eps {
		out = append(out, fmt.Sprintf("%d=%s", e.port, strings.Join(e.addrs, ",")))
	}
	return strings.Join(out, " ")
}

// TestEndpointReconciler: servers sharing one API publish each other; a
// server that stops renewing drops out once its lease expires; one that
// withdraws drops out at once; loopback servers are never published.
func TestEndpointReconciler(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	server := func(id, endpoint string) *endpointReconciler {
		return &endpointReconciler{log: slog.New(slog.DiscardHandler), client: client, clk: clk, id: id, endpoint: endpoint}
	}
	a, b, c, lo := server("a", "10.0.0.1:6443"), server("b", "10.0.0.2:6443"), server("c", "10.0.0.3:6443"), server("lo", "127.0.0.1:6443")

	// step renews the given servers, then reconciles through the first.
	step := func(rs ...*endpointReconciler) {
		t.Helper()
		for _, r := range rs {
			if err := r.renew(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := rs[0].reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	published := func() (eps, slice []string) {
		t.Helper()
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ep.Subsets {
			for _, a := range s.Addresses {
				eps = append(eps, fmt.Sprintf("%s:%d", a.IP, s.Ports[0].Port))
			}
		}
		sl, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sl.Endpoints {
			slice = append(slice, fmt.Sprintf("%s:%d", e.Addresses[0], *sl.Ports[0].Port))
		}
		slices.Sort(eps)
		slices.Sort(slice)
		return eps, slice
	}
	expect := func(what string, want ...string) {
		t.Helper()
		eps, slice := published()
		if !slices.Equal(eps, want) || !slices.Equal(slice, want) {
			t.Fatalf("%s: endpoints %v, slice %v, want %v", what, eps, slice, want)
		}
	}

	step(lo)
	if _, err := client.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
		t.Fatal("a loopback server alone created endpoints")
	}
	step(a, b, c, lo)
	expect("three servers", "10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443")

	// c dies: it stops renewing; the others keep renewing every second.
	for range 4 {
		clk.SetTime(clk.Now().Add(time.Second))
		step(a, b)
		expect("c's lease not yet expired", "10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443")
	}
	clk.SetTime(clk.Now().Add(time.Second))
	step(b, a)
	expect("c's lease expired", "10.0.0.1:6443", "10.0.0.2:6443")

	// b stops cleanly.
	if err := b.withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	expect("b withdrew", "10.0.0.1:6443")
	if _, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "apiserver-b", metav1.GetOptions{}); err == nil {
		t.Fatal("b's lease outlived its withdrawal")
	}
	// The last one stops: the service has no endpoint left.
	if err := a.withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	expect("all withdrew")

	// A lease expired for longer than apiserverLeaseGC is deleted.
	clk.SetTime(clk.Now().Add(apiserverLeaseGC + time.Second))
	step(a)
	if _, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "apiserver-c", metav1.GetOptions{}); err == nil {
		t.Fatal("c's long-expired lease was not deleted")
	}
	expect("a back", "10.0.0.1:6443")
}

// TestEndpointReconcilerDuplicateID: two servers with one id (a copied data
// dir) are reported; one server renewing alone is not.
func TestEndpointReconcilerDuplicateID(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a := &endpointReconciler{log: log, client: client, clk: clk, id: "x", endpoint: "10.0.0.1:6443"}
	b := &endpointReconciler{log: slog.New(slog.DiscardHandler), client: client, clk: clk, id: "x", endpoint: "10.0.0.2:6443"}
	for range 3 {
		clk.SetTime(clk.Now().Add(time.Second + time.Nanosecond))
		if err := a.renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if logs.Len() > 0 {
		t.Fatalf("a server renewing its own lease reported: %s", logs.String())
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if err := b.renew(ctx); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if err := a.renew(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "same server id") || !strings.Contains(logs.String(), "10.0.0.2:6443") {
		t.Fatalf("duplicate id not reported: %q", logs.String())
	}
}
