package coe

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

func TestResize(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("r1", 2)
	cl := e.waitStatus("r1", wharfv1.StatusCreateComplete)
	kube := e.kube(cl)
	deploy(t, kube, "web", 4)
	podsOn := waitPods(t, kube, 4)
	if podsOn["r1-node-0"] == 0 {
		t.Fatalf("no pod on r1-node-0 to drain: %v", podsOn)
	}

	// Grow through the cluster's nodeCount: the default worker group follows.
	cl = e.updateCluster("r1", func(cl *wharfv1.Cluster) { cl.Spec.NodeCount = 3 })
	done := watchUpdated(t, e, "r1", cl.Generation)
	e.waitFor("r1", "3 nodes, UPDATE_COMPLETE", func(cl *wharfv1.Cluster) bool {
		return cl.Status.Status == wharfv1.StatusUpdateComplete && len(cl.Status.NodeAddresses) == 3
	})
	// What `wharf cluster resize --wait` takes as done must be done.
	if first := done(); first == nil || len(first.Status.NodeAddresses) != 3 {
		t.Errorf("first status with the generation observed and *_COMPLETE: %+v, want 3 node addresses", first)
	}
	if g := e.group("r1-default-worker"); g.Spec.NodeCount != 3 || !slices.Equal(g.Status.Nodes, []string{"r1-node-0", "r1-node-1", "r1-node-2"}) {
		t.Fatalf("worker group after growing: spec %d, status %+v", g.Spec.NodeCount, g.Status)
	}

	// Shrink through the group, naming a host to remove first.
	events := watchNodes(t, kube)
	g := e.group("r1-default-worker")
	g.Spec.NodeCount, g.Spec.NodesToRemove = 1, []string{"r1-node-0"}
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "group shrunk to r1-node-1", waitLong, func() (bool, error) {
		g := e.group("r1-default-worker")
		return g.Status.Status == wharfv1.StatusUpdateComplete && slices.Equal(g.Status.Nodes, []string{"r1-node-1"}), nil
	})
	e.waitFor("r1", "nodeCount 1, UPDATE_COMPLETE", func(cl *wharfv1.Cluster) bool {
		return cl.Spec.NodeCount == 1 && cl.Status.Status == wharfv1.StatusUpdateComplete && len(cl.Status.NodeAddresses) == 1
	})
	if g := e.group("r1-default-worker"); len(g.Spec.NodesToRemove) != 0 {
		t.Errorf("nodesToRemove %v after the shrink, want none", g.Spec.NodesToRemove)
	}
	var hosts []string
	for _, h := range e.prov.All() {
		hosts = append(hosts, h.Name)
	}
	if !slices.Equal(hosts, []string{"r1-master-0", "r1-node-1"}) {
		t.Errorf("hosts %v, want r1-master-0 and r1-node-1", hosts)
	}
	seen := events()
	for _, n := range []string{"r1-node-0", "r1-node-2"} {
		if cordoned, deleted := seen[n+" cordoned"], seen[n+" deleted"]; cordoned == 0 || deleted <= cordoned {
			t.Errorf("node %s: cordoned at event %d, deleted at event %d; want cordoned, then deleted", n, cordoned, deleted)
		}
	}
	// The removed nodes' agents are locked out; the kept one is not.
	for node, want := range map[string]bool{"r1-node-0": false, "r1-node-2": false, "r1-node-1": true} {
		_, err := kube.CoreV1().Secrets("kube-system").Get(e.ctx, "node-token-"+node, metav1.GetOptions{})
		if has := err == nil; has != want {
			t.Errorf("token of node %s: present %v (%v), want %v", node, has, err, want)
		}
	}
	if podsOn = waitPods(t, kube, 4); podsOn["r1-node-1"] != 4 {
		t.Errorf("pods per node after the drain: %v, want all 4 on r1-node-1", podsOn)
	}

	// Grow again: the lowest free index comes back.
	g = e.group("r1-default-worker")
	g.Spec.NodeCount = 2
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "group grown to 2", waitLong, func() (bool, error) {
		g := e.group("r1-default-worker")
		return g.Status.Status == wharfv1.StatusUpdateComplete && slices.Equal(g.Status.Nodes, []string{"r1-node-0", "r1-node-1"}), nil
	})
	e.waitFor("r1", "nodeCount 2", func(cl *wharfv1.Cluster) bool { return cl.Spec.NodeCount == 2 })
}

// A resize beyond the group's bounds fails with a clear reason and
// changes nothing.
func TestResizeBounds(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("b1", 1)
	e.waitStatus("b1", wharfv1.StatusCreateComplete)
	g := e.group("b1-default-worker")
	g.Spec.MaxNodeCount = ptr.To[int32](2)
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.updateCluster("b1", func(cl *wharfv1.Cluster) { cl.Spec.NodeCount = 4 })
	cl := e.waitStatus("b1", wharfv1.StatusUpdateFailed)
	if !strings.Contains(cl.Status.StatusReason, "above maxNodeCount 2") {
		t.Errorf("statusReason %q", cl.Status.StatusReason)
	}
	if g := e.group("b1-default-worker"); g.Status.Status != wharfv1.StatusUpdateFailed || !strings.Contains(g.Status.StatusReason, "above maxNodeCount 2") || g.Spec.NodeCount != 1 {
		t.Errorf("group: spec %d, status %+v", g.Spec.NodeCount, g.Status)
	}
	if n := len(e.prov.All()); n != 2 {
		t.Errorf("%d hosts, want 2", n)
	}
}

func deploy(t *testing.T, kube kubernetes.Interface, name string, replicas int32) {
	labels := map[string]string{"app": name}
	_, err := kube.AppsV1().Deployments("default").Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "testapp"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitPods waits for n running pods, none being deleted, and counts them per node.
func waitPods(t *testing.T, kube kubernetes.Interface, n int) map[string]int {
	t.Helper()
	var on map[string]int
	testserver.WaitFor(t, "running pods", waitLong, func() (bool, error) {
		pods, err := kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		on = map[string]int{}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
			if p.Status.Phase == corev1.PodRunning {
				on[p.Spec.NodeName]++
				running++
			}
		}
		return running == n && len(pods.Items) == n, nil
	})
	return on
}

// watchNodes records when nodes were cordoned and deleted (event numbers).
func watchNodes(t *testing.T, kube kubernetes.Interface) func() map[string]int {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			ev, ok := <-w.ResultChan()
			if !ok {
				return
			}
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				seen[n.Name+" deleted"] = i
			} else if n.Spec.Unschedulable && seen[n.Name+" cordoned"] == 0 {
				seen[n.Name+" cordoned"] = i
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
}

// watchUpdated returns the first state of the cluster in which generation
// gen is observed and the status is *_COMPLETE, as the CLI's wait sees it.
func watchUpdated(t *testing.T, e *testEnv, name string, gen int64) func() *wharfv1.Cluster {
	w, err := e.wc.Clusters(ns).Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var first *wharfv1.Cluster
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			cl, ok := ev.Object.(*wharfv1.Cluster)
			mu.Lock()
			if ok && first == nil && cl.Status.ObservedGeneration >= gen && strings.HasSuffix(cl.Status.Status, "_COMPLETE") {
				first = cl
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return func() *wharfv1.Cluster {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
}
