package resources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newNodeGroup(name string, mutate ...func(*wharfv1.NodeGroup)) *wharfv1.NodeGroup {
	g := &wharfv1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       wharfv1.NodeGroupSpec{Cluster: "demo", NodeCount: 2},
	}
	for _, m := range mutate {
		m(g)
	}
	NodeGroups().Default(g)
	return g
}

func TestNodeGroupNames(t *testing.T) {
	for name, want := range map[string]string{
		"demo-default-master": "demo-master-", "demo-default-worker": "demo-node-", "demo-gpu": "demo-gpu-",
	} {
		if got := HostPrefix(newNodeGroup(name)); got != want {
			t.Errorf("HostPrefix(%s) = %q, want %q", name, got, want)
		}
	}
	if newNodeGroup("demo-gpu").Spec.Role != wharfv1.RoleWorker {
		t.Errorf("role not defaulted to worker")
	}
}

func TestNodeGroupValidation(t *testing.T) {
	tests := []struct {
		name   string
		group  string
		mutate func(*wharfv1.NodeGroup)
		want   []wantErr
	}{
		{name: "worker group", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) {
			g.Spec.MinNodeCount, g.Spec.MaxNodeCount = 1, ptrTo(int32(5))
			g.Spec.Labels = map[string]string{"gpu": "true"}
			g.Spec.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
			g.Spec.NodesToRemove = []string{"demo-gpu-3"}
		}},
		{name: "default master", group: "demo-default-master", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Role, g.Spec.NodeCount = "master", 1 }},
		{name: "remove default workers", group: "demo-default-worker", mutate: func(g *wharfv1.NodeGroup) { g.Spec.NodesToRemove = []string{"demo-node-1"} }},
		{name: "not the cluster's", group: "other-gpu", want: []wantErr{invalid("metadata.name")}},
		{name: "name too long", group: "demo-" + strings.Repeat("g", 60), want: []wantErr{tooLong("metadata.name")}},
		{name: "no cluster", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Cluster = "" }, want: []wantErr{required("spec.cluster")}},
		{name: "second master group", group: "demo-ha", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Role = "master" }, want: []wantErr{invalid("spec.role")}},
		{name: "masters as workers", group: "demo-default-master", want: []wantErr{invalid("spec.role")}},
		{name: "role unknown", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Role = "etcd" }, want: []wantErr{notSupported("spec.role")}},
		{name: "three masters", group: "demo-default-master", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Role, g.Spec.NodeCount = "master", 3 }},
		{name: "four masters", group: "demo-default-master", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Role, g.Spec.NodeCount = "master", 4 }, want: []wantErr{invalid("spec.nodeCount")}},
		{name: "negative", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.NodeCount, g.Spec.MinNodeCount = -1, -1 },
			want: []wantErr{invalid("spec.nodeCount"), invalid("spec.minNodeCount")}},
		{name: "below min", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.MinNodeCount = 3 }, want: []wantErr{invalid("spec.nodeCount")}},
		{name: "above max", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.MaxNodeCount = ptrTo(int32(1)) }, want: []wantErr{invalid("spec.nodeCount")}},
		{name: "max below min", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) {
			g.Spec.MinNodeCount, g.Spec.NodeCount, g.Spec.MaxNodeCount = 2, 2, ptrTo(int32(1))
		}, want: []wantErr{invalid("spec.maxNodeCount")}},
		{name: "labels", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Labels = map[string]string{"a b": "c"} }, want: []wantErr{invalid("spec.labels")}},
		{name: "taint effect", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.Taints = []corev1.Taint{{Key: "k", Effect: "Never"}} },
			want: []wantErr{notSupported("spec.taints[0].effect")}},
		{name: "foreign host to remove", group: "demo-gpu", mutate: func(g *wharfv1.NodeGroup) { g.Spec.NodesToRemove = []string{"demo-node-1", "demo-gpu-1", "demo-gpu-1"} },
			want: []wantErr{invalid("spec.nodesToRemove[0]"), duplicate("spec.nodesToRemove[2]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate []func(*wharfv1.NodeGroup)
			if tt.mutate != nil {
				mutate = append(mutate, tt.mutate)
			}
			checkErrs(t, NodeGroups().Validate(newNodeGroup(tt.group, mutate...)), tt.want...)
		})
	}
	old := newNodeGroup("demo-gpu")
	moved := old.DeepCopy()
	moved.Spec.Cluster, moved.Spec.Role = "other", "master"
	checkErrs(t, NodeGroups().ValidateUpdate(moved, old), invalid("spec.cluster"), invalid("spec.role"))
	bad := old.DeepCopy()
	bad.Status.Status = "READY"
	checkErrs(t, NodeGroups().ValidateStatus(bad, old), notSupported("status.status"))
}

func TestNodeGroupAdmitAndDelete(t *testing.T) {
	ctx := context.Background()
	clusters := wharfv1.SchemeGroupVersion.WithResource("clusters")
	deleting := metav1.Now()
	objs := memObjects{clusters: {
		&wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo"}},
		&wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "old", DeletionTimestamp: &deleting}},
	}}
	for _, tt := range []struct {
		group, cluster string
		check          func(error) bool
	}{
		{"demo-gpu", "demo", func(err error) bool { return err == nil }},
		{"gone-gpu", "gone", apierrors.IsInvalid},
		{"old-gpu", "old", apierrors.IsConflict},
	} {
		g := newNodeGroup(tt.group, func(g *wharfv1.NodeGroup) { g.Spec.Cluster = tt.cluster })
		if err := NodeGroups().Admit(ctx, g, nil, objs); !tt.check(err) {
			t.Errorf("create %s: %v", tt.group, err)
		}
	}
	for _, tt := range []struct {
		group, cluster string
		refused        bool
	}{
		{"demo-default-worker", "demo", true},
		{"demo-default-master", "demo", true},
		{"demo-gpu", "demo", false},
		{"old-default-worker", "old", false},   // its cluster is being deleted
		{"gone-default-worker", "gone", false}, // its cluster is gone
	} {
		g := newNodeGroup(tt.group, func(g *wharfv1.NodeGroup) { g.Spec.Cluster = tt.cluster })
		if err := NodeGroups().ValidateDelete(ctx, g, objs); apierrors.IsConflict(err) != tt.refused {
			t.Errorf("delete %s: %v, want refused %v", tt.group, err, tt.refused)
		}
	}
}

func TestNodeGroupRow(t *testing.T) {
	g := newNodeGroup("demo-default-worker", func(g *wharfv1.NodeGroup) {
		g.CreationTimestamp = ago(time.Hour)
		g.Status = wharfv1.NodeGroupStatus{Status: wharfv1.StatusUpdateInProgress, Nodes: []string{"demo-node-1"}}
	})
	want := []any{"demo-default-worker", "demo", "worker", "1/2", "UPDATE_IN_PROGRESS", "60m"}
	if diff := cmp.Diff(want, nodeGroupRow(g, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestServiceRegistry(t *testing.T) {
	reg, err := NewRegistry(NewScheme(), Service()...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(reg.All()), len(Builtin())+4; got != want {
		t.Errorf("%d resources, want %d", got, want)
	}
	for _, r := range []*Resource{ClusterTemplates(), Clusters(), NodeGroups(), ClusterBackups()} {
		t.Run(r.GVR.Resource, func(t *testing.T) {
			got, ok := reg.Get(r.GVR)
			if !ok || got.Kind != r.Kind || !got.Namespaced || len(got.ShortNames) != 1 || got.Categories[0] != "wharf" {
				t.Fatalf("%v: %+v", r.GVR, got)
			}
			// Every hook copes with an empty object.
			obj := r.New()
			if r.Default != nil {
				r.Default(obj)
			}
			_ = r.Validate(obj)
			if r.ValidateUpdate != nil {
				_ = r.ValidateUpdate(obj, r.New())
			}
			if cells := r.Row(obj); len(cells) != len(r.Columns) {
				t.Errorf("%d cells for %d columns", len(cells), len(r.Columns))
			}
			if r.ValidateDelete == nil {
				return
			}
			if err := r.ValidateDelete(context.Background(), obj, memObjects{}); err != nil {
				t.Errorf("delete of an empty object: %v", err)
			}
		})
	}
	// Plain clusters serve none of them.
	plain, _ := NewRegistry(NewScheme())
	if _, ok := plain.Get(wharfv1.SchemeGroupVersion.WithResource("clusters")); ok {
		t.Error("a plain cluster serves clusters")
	}
}
