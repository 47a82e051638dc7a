package coe

import (
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

func TestMain(m *testing.M) {
	if os.Getenv("WHARF_TEST_LOG") == "" {
		// The simulated agents' informers complain when a test cuts a host.
		klog.SetOutput(discard{})
		klog.LogToStderr(false)
	}
	os.Exit(m.Run())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// A user node group: its hosts come, its labels and taints go on their
// nodes (and follow the group's changes), and its hosts go with it.
func TestNodeGroupLabelsAndTaints(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("g1", 1)
	cl := e.waitStatus("g1", wharfv1.StatusCreateComplete)
	kube := e.kube(cl)
	gpu := corev1.Taint{Key: "gpu", Value: "yes", Effect: corev1.TaintEffectNoSchedule}
	e.createGroup("g1-gpu", "g1", 1, map[string]string{"gpu": "yes", "tier": "a"}, []corev1.Taint{gpu})

	node := func(name string, ok func(*corev1.Node) bool) *corev1.Node {
		t.Helper()
		var n *corev1.Node
		testserver.WaitFor(t, "node "+name, waitLong, func() (bool, error) {
			var err error
			n, err = kube.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
			return err == nil && ok(n), err
		})
		return n
	}
	n := node("g1-gpu-0", func(n *corev1.Node) bool { return nodeReady(n) && n.Labels["gpu"] == "yes" })
	if n.Labels["tier"] != "a" || n.Labels[LabelNodeGroup] != "g1-gpu" {
		t.Errorf("labels %v", n.Labels)
	}
	if diff := cmp.Diff([]corev1.Taint{gpu}, n.Spec.Taints); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}
	testserver.WaitFor(t, "group g1-gpu complete", waitLong, func() (bool, error) {
		g := e.group("g1-gpu")
		return g.Status.Status == wharfv1.StatusCreateComplete && slices.Equal(g.Status.Nodes, []string{"g1-gpu-0"}), nil
	})

	// The group changes: labels and taints follow, others' stay.
	if _, err := kube.CoreV1().Nodes().Patch(e.ctx, "g1-gpu-0", "application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"mine":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	g := e.group("g1-gpu")
	g.Spec.Labels = map[string]string{"gpu": "yes", "zone": "z1"}
	noExec := corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoExecute}
	g.Spec.Taints = []corev1.Taint{noExec}
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n = node("g1-gpu-0", func(n *corev1.Node) bool { return n.Labels["zone"] == "z1" })
	if _, ok := n.Labels["tier"]; ok || n.Labels["mine"] != "1" || n.Labels["gpu"] != "yes" {
		t.Errorf("labels after the change %v: want gpu, zone and mine, no tier", n.Labels)
	}
	if diff := cmp.Diff([]corev1.Taint{noExec}, n.Spec.Taints); diff != "" {
		t.Errorf("taints after the change (-want +got):\n%s", diff)
	}
	// The default worker group's labels too.
	w := e.group("g1-default-worker")
	w.Spec.Labels = map[string]string{"pool": "default"}
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, w, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	node("g1-node-0", func(n *corev1.Node) bool { return n.Labels["pool"] == "default" })

	// Deleting the group removes its host and node.
	if err := e.wc.NodeGroups(ns).Delete(e.ctx, "g1-gpu", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "g1-gpu-0 gone", waitLong, func() (bool, error) {
		_, err := kube.CoreV1().Nodes().Get(e.ctx, "g1-gpu-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && len(e.prov.All()) == 2, nil
	})
	e.waitFor("g1", "one node address", func(cl *wharfv1.Cluster) bool { return len(cl.Status.NodeAddresses) == 1 })
}
