package nodeipam

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

func node(name, cidr string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeSpec{PodCIDR: cidr}}
}

// harness is a controller whose cache the test fills by hand, so the
// cache can lag behind the API server exactly as the test says.
type harness struct {
	c       *Controller
	client  *fake.Clientset
	indexer cache.Indexer
}

func newHarness(t *testing.T, cluster string, maskSize int, nodes ...*v1.Node) *harness {
	t.Helper()
	objs := make([]runtime.Object, len(nodes))
	for i, n := range nodes {
		objs[i] = n
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), client, factory, netip.MustParsePrefix(cluster), WithMaskSize(maskSize))
	indexer := factory.Core().V1().Nodes().Informer().GetIndexer()
	for _, n := range nodes {
		if err := indexer.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{c: c, client: client, indexer: indexer}
}

// assigned returns the pod CIDR of each node as the API server has it.
func (h *harness) assigned(t *testing.T) map[string]string {
	t.Helper()
	l, err := h.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range l.Items {
		out[n.Name] = n.Spec.PodCIDR
	}
	return out
}

// catchUp copies the API server's nodes into the cache.
func (h *harness) catchUp(t *testing.T) {
	t.Helper()
	l, _ := h.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	for i := range l.Items {
		if err := h.indexer.Update(&l.Items[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name     string
		cluster  string
		maskSize int
		nodes    []*v1.Node
		// syncs are the nodes synced in order; catchUp refreshes the cache
		// after each sync, else the cache lags behind every update.
		syncs   []string
		catchUp bool
		want    map[string]string
		wantErr error
	}{
		{
			name: "nodes get consecutive /24s", cluster: "10.244.0.0/16", maskSize: 24,
			nodes: []*v1.Node{node("a", ""), node("b", "")}, syncs: []string{"a", "b"}, catchUp: true,
			want: map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24"},
		},
		{
			name: "a stale cache still hands out distinct CIDRs", cluster: "10.244.0.0/16", maskSize: 24,
			nodes: []*v1.Node{node("a", ""), node("b", ""), node("c", "")}, syncs: []string{"a", "b", "c"},
			want: map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24", "c": "10.244.2.0/24"},
		},
		{
			name: "CIDRs in use are skipped", cluster: "10.244.0.0/16", maskSize: 24,
			nodes: []*v1.Node{node("a", "10.244.0.0/24"), node("b", "10.244.2.0/24"), node("c", "")}, syncs: []string{"c"},
			want: map[string]string{"a": "10.244.0.0/24", "b": "10.244.2.0/24", "c": "10.244.1.0/24"},
		},
		{
			name: "a node that has a CIDR keeps it", cluster: "10.244.0.0/16", maskSize: 24,
			nodes: []*v1.Node{node("a", "10.99.0.0/24")}, syncs: []string{"a"},
			want: map[string]string{"a": "10.99.0.0/24"},
		},
		{
			name: "mask size is configurable", cluster: "10.0.0.0/24", maskSize: 26,
			nodes: []*v1.Node{node("a", ""), node("b", "")}, syncs: []string{"a", "b"}, catchUp: true,
			want: map[string]string{"a": "10.0.0.0/26", "b": "10.0.0.64/26"},
		},
		{
			name: "exhausted range", cluster: "10.244.0.0/23", maskSize: 24,
			nodes: []*v1.Node{node("a", ""), node("b", ""), node("c", "")}, syncs: []string{"a", "b", "c"}, catchUp: true,
			want:    map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24", "c": ""},
			wantErr: ErrExhausted,
		},
		{
			name: "unknown node is nothing to do", cluster: "10.244.0.0/16", maskSize: 24,
			syncs: []string{"gone"}, want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cluster, tt.maskSize, tt.nodes...)
			var err error
			for _, name := range tt.syncs {
				if e := h.c.sync(context.Background(), name); e != nil {
					err = e
				}
				if tt.catchUp {
					h.catchUp(t)
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("sync error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, h.assigned(t)); diff != "" {
				t.Errorf("pod CIDRs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReleaseOnDeletion(t *testing.T) {
	h := newHarness(t, "10.244.0.0/24", 25, node("a", ""), node("b", ""))
	for _, n := range []string{"a", "b"} {
		if err := h.c.sync(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		h.catchUp(t)
	}
	// The range is full; deleting a frees its CIDR for c.
	a, _, _ := h.indexer.GetByKey("a")
	if err := h.client.CoreV1().Nodes().Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.indexer.Delete(a)
	h.c.nodeDeleted(a)
	c := node("c", "")
	h.client.CoreV1().Nodes().Create(context.Background(), c, metav1.CreateOptions{})
	h.indexer.Add(c)
	if err := h.c.sync(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b": "10.244.0.128/25", "c": "10.244.0.0/25"}
	if diff := cmp.Diff(want, h.assigned(t)); diff != "" {
		t.Errorf("pod CIDRs (-want +got):\n%s", diff)
	}
}

func TestConflictKeepsReservation(t *testing.T) {
	h := newHarness(t, "10.244.0.0/16", 24, node("a", ""), node("b", ""))
	conflicts := 1
	h.client.PrependReactor("update", "nodes", func(clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "a", errors.New("modified"))
		}
		return false, nil, nil
	})
	if err := h.c.sync(context.Background(), "a"); !apierrors.IsConflict(err) {
		t.Fatalf("first sync: %v, want a conflict", err)
	}
	// b must not get a's reserved CIDR while a retries.
	for _, n := range []string{"b", "a"} {
		if err := h.c.sync(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"a": "10.244.0.0/24", "b": "10.244.1.0/24"}
	if diff := cmp.Diff(want, h.assigned(t)); diff != "" {
		t.Errorf("pod CIDRs (-want +got):\n%s", diff)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		cidr string
		mask int
		ok   bool
	}{
		{"10.244.0.0/16", 24, true},
		{"10.244.0.0/16", 16, true},
		{"10.244.0.0/16", 12, false},
		{"10.244.0.0/16", 31, false},
		{"fd00::/48", 64, false},
	}
	for _, tt := range tests {
		err := Check(netip.MustParsePrefix(tt.cidr), tt.mask)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%s, %d) = %v, want ok=%v", tt.cidr, tt.mask, err, tt.ok)
		}
	}
}
