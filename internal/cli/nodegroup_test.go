package cli

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/testserver"
)

func TestNodeGroupCommands(t *testing.T) {
	e := newClusterEnv(t)
	addGroups(t, e) // default-master, default-worker, gpu (1 node)
	out := e.must("nodegroup", "create", "demo", "ml", "--node-count", "2", "--min-nodes", "1", "--max-nodes", "4",
		"--labels", "accel=gpu", "--taint", "dedicated=ml:NoSchedule", "--taint", "spot:PreferNoSchedule")
	testserver.Contains(t, out, "| name            | ml ", "| cluster_id      | demo", "| max_node_count  | 4 ",
		"| taints          | dedicated=ml:NoSchedule, spot:PreferNoSchedule", "| is_default      | false")
	g := e.group("demo-ml")
	wantTaints := []corev1.Taint{{Key: "dedicated", Value: "ml", Effect: "NoSchedule"}, {Key: "spot", Effect: "PreferNoSchedule"}}
	if diff := cmp.Diff(wantTaints, g.Taints); diff != "" || g.MinNodeCount != 1 || *g.MaxNodeCount != 4 || g.Labels["accel"] != "gpu" {
		t.Errorf("created group %+v (taints -want +got):\n%s", g, diff)
	}

	if got := e.must("nodegroup", "list", "demo", "-f", "value", "-c", "name", "-c", "role", "-c", "node_count"); got != "default-master master 1\ndefault-worker worker 2\ngpu worker 1\nml worker 2\n" {
		t.Errorf("list:\n%s", got)
	}
	testserver.Contains(t, e.must("nodegroup", "list", "demo"), "| uuid ", "| name           | node_count | role   | status |")
	var shown map[string]any
	if err := json.Unmarshal([]byte(e.must("nodegroup", "show", "demo", "default-worker", "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown["is_default"] != true || shown["node_count"] != float64(2) || shown["max_node_count"] != "" {
		t.Errorf("show default-worker: %v", shown)
	}

	for _, tt := range []struct {
		args  []string
		check func(t *testing.T)
	}{
		{[]string{"demo", "ml", "replace", "node_count=3", "max_node_count=5"}, func(t *testing.T) {
			if g := e.group("demo-ml"); g.NodeCount != 3 || *g.MaxNodeCount != 5 {
				t.Errorf("%d nodes, max %d", g.NodeCount, *g.MaxNodeCount)
			}
		}},
		{[]string{"demo", "ml", "remove", "max_node_count", "labels/accel"}, func(t *testing.T) {
			if g := e.group("demo-ml"); g.MaxNodeCount != nil || len(g.Labels) != 0 {
				t.Errorf("max %v, labels %v", g.MaxNodeCount, g.Labels)
			}
		}},
		{[]string{"demo", "ml", "add", "taints=gpu:NoExecute"}, func(t *testing.T) {
			if g := e.group("demo-ml"); len(g.Taints) != 3 || g.Taints[2].Key != "gpu" {
				t.Errorf("taints %v", g.Taints)
			}
		}},
		{[]string{"demo", "default-worker", "replace", "node_count=4"}, func(t *testing.T) {
			if n := e.cluster("demo").NodeCount; n != 4 {
				t.Errorf("cluster nodeCount %d after resizing its default group to 4", n)
			}
		}},
	} {
		e.must(append([]string{"nodegroup", "update"}, tt.args...)...)
		tt.check(t)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "nope", "gpu2"}, `CLUSTER (spec.cluster): Invalid value: "nope": cluster "nope" not found in project "default"`},
		{[]string{"create", "demo", "gpu"}, `node group "gpu" already exists in project "default"`},
		{[]string{"create", "demo", "big", "--node-count", "5", "--max-nodes", "3"}, "--node-count (spec.nodeCount): Invalid value: 5: must be at most maxNodeCount (3)"},
		{[]string{"create", "demo", "tainted", "--taint", "novalue"}, `taint "novalue": want key[=value]:Effect`},
		{[]string{"create", "demo", "tainted", "--taint", "k=v:Sometimes"}, `--taint (spec.taints[0].effect): Unsupported value: "Sometimes"`},
		{[]string{"create", "demo", "ha", "--role", "master"}, "--role (spec.role)"},
		{[]string{"update", "demo", "ml", "replace", "node_count=9", "min_node_count=10"}, "--node-count (spec.nodeCount)"},
		{[]string{"show", "demo", "tpu"}, `cluster "demo" has no node group "tpu"`},
		{[]string{"list", "nope"}, `cluster "nope" not found in project "default"`},
		{[]string{"delete", "demo", "default-master"}, "default-master is a default node group of cluster demo"},
	} {
		e.fails(append([]string{"nodegroup"}, tt.args...), tt.want)
	}

	if got := e.must("nodegroup", "delete", "demo", "ml", "demo-gpu"); got != "Request to delete node group ml of cluster demo has been accepted.\nRequest to delete node group demo-gpu of cluster demo has been accepted.\n" {
		t.Errorf("delete: %q", got)
	}
	for _, name := range []string{"demo-ml", "demo-gpu"} {
		if _, err := e.c.NodeGroups("default").Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s after delete: %v", name, err)
		}
	}
}
