//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testserver"
)

// TestHostAutoscaling: a 1+1 cluster of real hosts whose default worker
// group autoscales between 1 and 3 gets hosts when its pods stay
// Pending, and goes back to 1 when they are gone. Hosts report the
// machine's CPUs; each pod asks for 30 % of them, so a host takes 3.
func TestHostAutoscaling(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "auto", "--template", "k8s-local", "--node-count", "1", "--labels", "auto_scaling_enabled=true", "--wait")
	s.must("nodegroup", "update", "auto", "default-worker", "replace", "min_node_count=1", "max_node_count=3", "--wait")
	k, client := s.cluster("auto")
	k.Eventually(`auto-node-0\s+Ready`, "get", "nodes")
	ctx := testContext(t)
	node, err := client.CoreV1().Nodes().Get(ctx, "auto-node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cpu := node.Status.Allocatable.Cpu().MilliValue() * 3 / 10

	labels := map[string]string{"app": "load"}
	start := time.Now()
	_, err = client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "load"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](8),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{Name: "sleep", Image: "registry.wharf.local/wharf/busybox:v1",
						Command: []string{"sleep", "3600"},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: *kresource.NewMilliQuantity(cpu, kresource.DecimalSI)}}}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ready time.Duration
	testserver.WaitFor(t, "3 Ready nodes", 3*time.Minute, func() (bool, error) {
		l, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, no := range l.Items {
			for _, c := range no.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					n++
				}
			}
		}
		ready = time.Since(start)
		return n == 3, nil
	})
	waitLoad(t, client, 8)
	t.Logf("autoscaling on real hosts: 8 pods, 5 pending → 2 new hosts Ready after %s, every pod Running after %s",
		ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if got := strings.TrimSpace(s.must("nodegroup", "show", "auto", "default-worker", "-f", "value", "-c", "node_count")); got != "3" {
		t.Errorf("node group node_count %s, want 3", got)
	}
	testserver.WaitFor(t, "cluster node_count 3", time.Minute, func() (bool, error) { return s.field("auto", "node_count") == "3", nil })
	if ev := serviceEvents(t, s, "auto", "ScaledUpGroup"); len(ev) == 0 || !strings.Contains(ev[len(ev)-1], " -> 3: ") {
		t.Errorf("ScaledUpGroup events %q, want one reaching 3", ev)
	}

	// A ninth pod: max reached, said in the faults.
	k.Run("scale", "deployment/load", "--replicas", "10")
	testserver.WaitFor(t, "a fault for max nodes", time.Minute, func() (bool, error) {
		return strings.Contains(s.field("auto", "faults"), "max nodes 3 reached"), nil
	})

	// The load goes: back to min (30 s underused).
	k.Run("scale", "deployment/load", "--replicas", "0")
	testserver.WaitFor(t, "back to 1 node", 3*time.Minute, func() (bool, error) {
		return strings.TrimSpace(s.must("nodegroup", "show", "auto", "default-worker", "-f", "value", "-c", "node_count")) == "1" &&
			s.field("auto", "status") == "UPDATE_COMPLETE" && s.field("auto", "node_count") == "1", nil
	})
	testserver.WaitFor(t, "one node left", time.Minute, func() (bool, error) {
		l, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 1, err
	})
	if faults := s.field("auto", "faults"); strings.Contains(faults, "autoscaler/") {
		t.Errorf("faults %q after the load went, want no autoscaler line", faults)
	}
	if ev := serviceEvents(t, s, "auto", "ScaleDown"); len(ev) == 0 || !strings.Contains(ev[len(ev)-1], " -> 1: removing") {
		t.Errorf("ScaleDown events %q, want one reaching 1", ev)
	}
	s.must("cluster", "delete", "auto", "--wait")
}

func waitLoad(t *testing.T, client kubernetes.Interface, n int) {
	t.Helper()
	testserver.WaitFor(t, "load pods running", 3*time.Minute, func() (bool, error) {
		l, err := client.CoreV1().Pods("default").List(testContext(t), metav1.ListOptions{LabelSelector: "app=load"})
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

// serviceEvents lists the messages of a cluster's events with reason, in
// the service's own API.
func serviceEvents(t *testing.T, s *svc, cluster, reason string) []string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	l, err := kube.CoreV1().Events("").List(testContext(t), metav1.ListOptions{FieldSelector: fields.Set{
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
