package cli

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// addGroups makes the node groups the controller would: the default ones
// of demo, and gpu.
func addGroups(t *testing.T, e *serviceEnv) {
	t.Helper()
	for _, g := range []wharfv1.NodeGroup{
		{ObjectMeta: metav1.ObjectMeta{Name: "demo-default-master"}, Spec: wharfv1.NodeGroupSpec{Cluster: "demo", Role: "master", NodeCount: 1}},
		{ObjectMeta: metav1.ObjectMeta{Name: "demo-default-worker"}, Spec: wharfv1.NodeGroupSpec{Cluster: "demo", NodeCount: 2}},
	} {
		if _, err := e.c.NodeGroups("default").Create(context.Background(), &g, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.must("nodegroup", "create", "demo", "gpu", "--node-count", "1")
}

func (e *serviceEnv) group(name string) wharfv1.NodeGroupSpec {
	e.t.Helper()
	g, err := e.c.NodeGroups("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return g.Spec
}

func (e *serviceEnv) cluster(name string) wharfv1.ClusterSpec {
	e.t.Helper()
	c, err := e.c.Clusters("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Spec
}

func TestClusterResize(t *testing.T) {
	e := newClusterEnv(t)
	// Before the controller made the default group, the cluster says the size.
	e.must("cluster", "resize", "demo", "3")
	if n := e.cluster("demo").NodeCount; n != 3 {
		t.Errorf("cluster nodeCount %d, want 3", n)
	}
	e.fails([]string{"cluster", "resize", "demo", "1", "--nodes-to-remove", "demo-node-1"}, `node group "demo-default-worker" not found`)
	addGroups(t, e)

	tests := []struct {
		args        []string
		group       string
		wantCount   int32
		wantRemove  []string
		clusterSize int32
	}{
		{[]string{"demo", "4"}, "demo-default-worker", 4, nil, 4},
		{[]string{"demo", "2", "--nodes-to-remove", "demo-node-1,demo-node-3"}, "demo-default-worker", 2, []string{"demo-node-1", "demo-node-3"}, 2},
		{[]string{"demo", "3", "--nodegroup", "gpu"}, "demo-gpu", 3, nil, 2},
		{[]string{"demo", "2", "--nodegroup", "demo-gpu", "--nodes-to-remove", "demo-gpu-2"}, "demo-gpu", 2, []string{"demo-gpu-2"}, 2},
	}
	for _, tt := range tests {
		e.must(append([]string{"cluster", "resize"}, tt.args...)...)
		g := e.group(tt.group)
		if g.NodeCount != tt.wantCount || !cmp.Equal(g.NodesToRemove, tt.wantRemove) {
			t.Errorf("resize %v: group %s has %d nodes, to remove %v; want %d, %v", tt.args, tt.group, g.NodeCount, g.NodesToRemove, tt.wantCount, tt.wantRemove)
		}
		if n := e.cluster("demo").NodeCount; n != tt.clusterSize {
			t.Errorf("resize %v: cluster nodeCount %d, want %d", tt.args, n, tt.clusterSize)
		}
	}
	e.fails([]string{"cluster", "resize", "demo", "1", "--nodes-to-remove", "demo-node-1,demo-node-2"}, "--nodes-to-remove names 2 hosts, but resizing node group demo-default-worker from 2 to 1 removes 1")
	e.fails([]string{"cluster", "resize", "demo", "1", "--nodes-to-remove", "demo-gpu-1"}, "--nodes-to-remove (spec.nodesToRemove[0])", "not a host of node group demo-default-worker")
	e.fails([]string{"cluster", "resize", "demo", "two"}, "want a number of nodes")
	e.fails([]string{"cluster", "resize", "demo", "2", "--nodegroup", "tpu"}, `cluster "demo" has no node group "tpu"`)
	e.fails([]string{"cluster", "resize", "nope", "2"}, `cluster "nope" not found`)
}

func TestClusterUpdate(t *testing.T) {
	e := newClusterEnv(t)
	addGroups(t, e)
	tests := []struct {
		args       []string
		wantCount  int32
		wantLabels map[string]string
	}{
		{[]string{"replace", "node_count=5"}, 5, nil},
		{[]string{"replace", "labels=a=1,b=2"}, 5, map[string]string{"a": "1", "b": "2"}},
		{[]string{"add", "labels=c=3", "labels/a=9"}, 5, map[string]string{"a": "9", "b": "2", "c": "3"}},
		{[]string{"remove", "labels/b"}, 5, map[string]string{"a": "9", "c": "3"}},
		{[]string{"remove", "/labels"}, 5, nil},
	}
	for _, tt := range tests {
		e.must(append([]string{"cluster", "update", "demo"}, tt.args...)...)
		c := e.cluster("demo")
		if c.NodeCount != tt.wantCount || !cmp.Equal(c.Labels, tt.wantLabels) {
			t.Errorf("update %v: %d nodes, labels %v; want %d, %v", tt.args, c.NodeCount, c.Labels, tt.wantCount, tt.wantLabels)
		}
	}
	if n := e.group("demo-default-worker").NodeCount; n != 5 {
		t.Errorf("default group has %d nodes after update node_count=5", n)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"replace", "master_count=3"}, `cannot update "master_count": attributes are labels, node_count`},
		{[]string{"swap", "node_count=3"}, `unknown operation "swap"`},
		{[]string{"replace", "node_count"}, "want node_count=VALUE"},
		{[]string{"remove", "node_count"}, "node_count: cannot be removed"},
		{[]string{"remove", "labels/zz"}, `no label "zz"`},
		{[]string{"replace", "node_count=many"}, `want a number, not "many"`},
		{[]string{"replace", "node_count=-3"}, "--node-count (spec.nodeCount)"},
	} {
		e.fails(append([]string{"cluster", "update", "demo"}, tt.args...), tt.want)
	}
}
