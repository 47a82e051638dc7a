package coe

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

// autoscaleConfig makes the autoscaler quick for tests: pods wait 300ms,
// nodes are removed after 2s underused.
func autoscaleConfig(cfg *Config) {
	cfg.Autoscale = AutoscaleConfig{Period: 100 * time.Millisecond, ScaleUpDelay: 300 * time.Millisecond, ScaleDownUnneeded: 2 * time.Second}
}

// autoscaledCluster makes a 1+1 cluster whose default worker group
// autoscales between min 1 and max nodes, and returns its API.
func autoscaledCluster(t testing.TB, e *testEnv, name string, maxNodes int32) kubernetes.Interface {
	t.Helper()
	e.createCluster(name, 1, func(cl *wharfv1.Cluster) { cl.Spec.Labels = map[string]string{LabelAutoScaling: "true"} })
	cl := e.waitStatus(name, wharfv1.StatusCreateComplete)
	g := e.group(name + "-default-worker")
	g.Spec.MinNodeCount, g.Spec.MaxNodeCount = 1, ptr.To(maxNodes)
	if _, err := e.wc.NodeGroups(ns).Update(e.ctx, g, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e.kube(cl)
}

// deployRequesting runs a Deployment whose pods each request cpu.
func deployRequesting(t testing.TB, kube kubernetes.Interface, name string, replicas int32, cpu string) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := kube.AppsV1().Deployments("default").Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "testapp",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: kresource.MustParse(cpu)}}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func scaleDeployment(t testing.TB, kube kubernetes.Interface, name string, replicas int32) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := kube.AppsV1().Deployments("default").GetScale(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = replicas
		_, err = kube.AppsV1().Deployments("default").UpdateScale(context.Background(), name, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// clusterEvents lists the messages of the cluster's events with reason.
func clusterEvents(t testing.TB, e *testEnv, cluster, reason string) []string {
	t.Helper()
	l, err := e.svc.Client.CoreV1().Events(ns).List(e.ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": "Cluster", "involvedObject.name": cluster, "reason": reason}.String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range l.Items {
		out = append(out, ev.Message)
	}
	return out
}

// 30 pods of 500m on a 1+1 cluster of 4-CPU hosts with max 4: 8 fit the
// first node, the rest get 3 more hosts at once; when the load goes the
// group returns to min.
func TestAutoscale(t *testing.T) {
	e := newEnv(t, nil)
	e.start(autoscaleConfig)
	kube := autoscaledCluster(t, e, "as", 4)

	deployRequesting(t, kube, "web", 30, "500m")
	podsOn := waitPods(t, kube, 30)
	if len(podsOn) != 4 {
		t.Errorf("pods per node %v, want 4 nodes", podsOn)
	}
	g := e.group("as-default-worker")
	if g.Spec.NodeCount != 4 {
		t.Errorf("group nodeCount %d, want 4", g.Spec.NodeCount)
	}
	e.waitFor("as", "nodeCount 4, UPDATE_COMPLETE", func(cl *wharfv1.Cluster) bool {
		return cl.Spec.NodeCount == 4 && cl.Status.Status == wharfv1.StatusUpdateComplete
	})
	testserver.WaitFor(t, "ScaledUpGroup event", waitLong, func() (bool, error) {
		return len(clusterEvents(t, e, "as", EventScaledUpGroup)) > 0, nil
	})
	// Hosts are added several at once, up to 4.
	ev := clusterEvents(t, e, "as", EventScaledUpGroup)
	if len(ev) == 0 || !strings.Contains(ev[0], "group default-worker 1 -> ") || !strings.Contains(ev[len(ev)-1], " -> 4: ") {
		t.Errorf("ScaledUpGroup events %q, want 1 -> ... -> 4", ev)
	}
	t.Logf("scale-up: %q", ev)
	// And on the pods, in the cluster's API, as cluster-autoscaler does.
	podEvents, err := kube.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{FieldSelector: "reason=TriggeredScaleUp"})
	if err != nil || len(podEvents.Items) == 0 || !strings.Contains(podEvents.Items[0].Message, "pod triggered scale-up: [{default-worker 1->") {
		t.Errorf("TriggeredScaleUp events on the pods: %v (%v)", podEvents, err)
	}

	// The load goes: back to min, one host left.
	scaleDeployment(t, kube, "web", 0)
	testserver.WaitFor(t, "group back to 1 node", waitLong, func() (bool, error) {
		g := e.group("as-default-worker")
		return g.Spec.NodeCount == 1 && g.Status.Status == wharfv1.StatusUpdateComplete && len(g.Status.Nodes) == 1, nil
	})
	e.waitFor("as", "nodeCount 1, UPDATE_COMPLETE", func(cl *wharfv1.Cluster) bool {
		return cl.Spec.NodeCount == 1 && cl.Status.Status == wharfv1.StatusUpdateComplete && len(cl.Status.NodeAddresses) == 1
	})
	if n := len(e.prov.All()); n != 2 {
		t.Errorf("%d hosts, want 2 (master and one worker)", n)
	}
	ev = clusterEvents(t, e, "as", EventScaleDown)
	if len(ev) == 0 || !strings.Contains(ev[0], "group default-worker 4 -> ") || !strings.Contains(ev[len(ev)-1], " -> 1: removing") {
		t.Errorf("ScaleDown events %q, want 4 -> ... -> 1", ev)
	}
	t.Logf("scale-down: %q", ev)
	if g := e.group("as-default-worker"); len(g.Spec.NodesToRemove) != 0 {
		t.Errorf("nodesToRemove %v after the scale-down", g.Spec.NodesToRemove)
	}
}

// When it cannot act, the autoscaler says why in an event and in the
// cluster's faults, and clears the fault once the cause is gone.
func TestAutoscaleCannotAct(t *testing.T) {
	e := newEnv(t, nil)
	e.start(autoscaleConfig)
	kube := autoscaledCluster(t, e, "nf", 1)

	deployRequesting(t, kube, "huge", 1, "64")
	cl := e.waitFor("nf", "fault for the huge pod", func(cl *wharfv1.Cluster) bool {
		return strings.Contains(cl.Status.Faults[faultPrefix+"pods"], "does not fit a new host")
	})
	if f := cl.Status.Faults[faultPrefix+"pods"]; !strings.Contains(f, "needs cpu 64") {
		t.Errorf("fault %q, want it to say the pod needs cpu 64", f)
	}
	if ev := clusterEvents(t, e, "nf", EventNotScaledUp); len(ev) != 1 {
		t.Errorf("NotScaledUp events %q, want one", ev)
	}

	// Room for 8 pods of 500m on the one host, max 1: the ninth waits.
	scaleDeployment(t, kube, "huge", 0)
	deployRequesting(t, kube, "web", 9, "500m")
	e.waitFor("nf", "max nodes fault", func(cl *wharfv1.Cluster) bool {
		_, stale := cl.Status.Faults[faultPrefix+"pods"]
		return !stale && strings.Contains(cl.Status.Faults[faultPrefix+"default-worker"], "max nodes 1 reached")
	})
	if g := e.group("nf-default-worker"); g.Spec.NodeCount != 1 {
		t.Errorf("group nodeCount %d, want 1", g.Spec.NodeCount)
	}
	scaleDeployment(t, kube, "web", 8)
	e.waitFor("nf", "faults cleared", func(cl *wharfv1.Cluster) bool {
		return !slices.ContainsFunc(slices.Collect(maps.Keys(cl.Status.Faults)), func(k string) bool { return strings.HasPrefix(k, faultPrefix) })
	})
}

// waitRunning waits for n Running pods of the Deployment app.
func waitRunning(t testing.TB, kube kubernetes.Interface, app string, n int) {
	t.Helper()
	testserver.WaitFor(t, "pods of "+app+" running", waitLong, func() (bool, error) {
		l, err := kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running == n, nil
	})
}

// waitNewNode waits for n Ready nodes and returns when it saw them.
func waitNewNode(t testing.TB, kube kubernetes.Interface, n int) time.Time {
	t.Helper()
	var at time.Time
	testserver.WaitFor(t, "ready nodes", waitLong, func() (bool, error) {
		l, err := kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range l.Items {
			if nodeReady(&l.Items[i]) {
				ready++
			}
		}
		at = time.Now()
		return ready >= n, nil
	})
	return at
}
