//go:build integration

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

// startMetricsCluster runs a server scraping every second and evaluating
// HPAs every second, with n simulated nodes that report their pods'
// annotated usage.
func startMetricsCluster(t *testing.T, n int) (*serverProc, kubernetes.Interface, *testserver.KubectlRunner) {
	t.Helper()
	dataDir := t.TempDir() + "/server"
	srv := startServer(t, dataDir, "127.0.0.1:0", "--metric-resolution=1s", "--horizontal-pod-autoscaler-sync-period=1s")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(srv.dataDir + ".log")
			t.Logf("server log:\n%s", out)
		}
	})
	ca, err := pki.EnsureCA(filepath.Join(dataDir, "pki"), "wharf-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServing(t.TempDir(), "simnode", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.client()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: n, Prefix: "node", CPU: "2", Memory: "4Gi",
		Stats: &simnode.StatsConfig{Cert: cert, ClientCAs: ca.Pool()}})
	testserver.WaitFor(t, "nodes to register", 30*time.Second, func() (bool, error) {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(nodes.Items) == n, err
	})
	return srv, c, testserver.NewKubectl(t, "33", srv.kubeconfig())
}

// usageDeployment runs replicas of a pod requesting 100m CPU and 64Mi,
// each container reporting cpu and mem.
func usageDeployment(t *testing.T, c kubernetes.Interface, name string, replicas int32, cpu, mem string, containers ...string) {
	t.Helper()
	labels := map[string]string{"app": name}
	var cs []corev1.Container
	for _, cn := range containers {
		cs = append(cs, corev1.Container{Name: cn, Image: "registry.wharf.local/testapp:latest", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		}})
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					simnode.CPUUsageAnnotation: cpu, simnode.MemoryUsageAnnotation: mem,
				}},
				Spec: corev1.PodSpec{Containers: cs},
			},
		},
	}
	if _, err := c.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestKubectlTop: kubectl top nodes and pods print what the simulated
// nodes report, through discovery, RBAC and the server's scrape.
func TestKubectlTop(t *testing.T) {
	_, c, k := startMetricsCluster(t, 2)
	usageDeployment(t, c, "busy", 2, "250m", "100Mi", "app", "sidecar")

	// Discovery lists the group, as kubectl top checks.
	testserver.Contains(t, k.Run("api-versions"), "metrics.k8s.io/v1beta1")
	testserver.Contains(t, k.Run("api-resources", "--api-group=metrics.k8s.io"), "NodeMetrics", "PodMetrics")

	out := k.Eventually(`busy-\S+\s+500m\s+200Mi`, "top", "pods")
	if n := strings.Count(out, "busy-"); n != 2 {
		t.Errorf("kubectl top pods: %d busy pods, want 2:\n%s", n, out)
	}
	out = k.Run("top", "pods", "-A", "--containers")
	testserver.Contains(t, out, "NAMESPACE", "default", "app", "sidecar", "250m", "100Mi")
	out = k.Run("top", "pods", "-l", "app=busy", "--no-headers")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
		t.Errorf("top pods -l app=busy: %d lines, want 2:\n%s", n, out)
	}
	if out := k.Run("top", "pods", "-l", "app=other", "--no-headers"); strings.Contains(out, "busy") {
		t.Errorf("top pods -l app=other lists busy pods:\n%s", out)
	}

	// Each pod's two containers, 250m each, on one of two 2-core nodes:
	// the nodes' total is 1 core.
	out = k.Eventually(`node-0\s+\d+m`, "top", "nodes")
	testserver.Contains(t, out, "node-0", "node-1", "CPU(cores)", "MEMORY(bytes)")
	nm, err := c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testserver.Contains(t, string(nm), `"kind":"NodeMetricsList"`, `"window"`)

	// A change of usage shows at the next scrape.
	pods, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=busy"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v", err)
	}
	name := pods.Items[0].Name
	k.Run("annotate", "pod", name, "--overwrite", simnode.CPUUsageAnnotation+"=1")
	k.Eventually(name+`\s+2000m`, "top", "pod", name)

	// get by name: a pod without figures is NotFound.
	if _, err := c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nothere").DoRaw(context.Background()); err == nil {
		t.Errorf("metrics of a missing pod: no error")
	}
}

// TestHPAScalesOnUsage: an HPA on 50% CPU utilization scales a Deployment
// whose pods use 4x their request up to max, and back to min once usage
// falls, after its (short) scale-down window; kubectl shows the HPA's
// targets and events.
func TestHPAScalesOnUsage(t *testing.T) {
	_, c, k := startMetricsCluster(t, 2)
	ctx := context.Background()
	usageDeployment(t, c, "web", 1, "200m", "32Mi", "app")
	k.RunIn(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 5
`, "apply", "-f", "-")

	// 200m of 100m requested is 200%, four times the target: 1 → 4.
	testserver.WaitFor(t, "the HPA to scale web to 4", 90*time.Second, func() (bool, error) {
		s, err := c.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Spec.Replicas == 4, err
	})
	hpa, err := c.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hpa.Status.LastScaleTime == nil || hpa.Status.DesiredReplicas != 4 {
		t.Errorf("status after scale-up: %+v", hpa.Status)
	}
	k.Eventually(`SuccessfulRescale\s+.*New size: 4; reason: cpu resource utilization \(percentage of request\) above target`, "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler")

	// The new pods use little: the window passes, then back to 1.
	k.Run("annotate", "pods", "-l", "app=web", "--overwrite", simnode.CPUUsageAnnotation+"=10m")
	testserver.WaitFor(t, "the HPA to scale web back to 1", 90*time.Second, func() (bool, error) {
		s, err := c.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Spec.Replicas == 1, err
	})
	out := k.Eventually(`web\s+Deployment/web\s+cpu: \d+%/50%\s+1\s+4\s+1`, "get", "hpa", "web")
	t.Logf("%s", out)
	out = k.Run("describe", "hpa", "web")
	testserver.Contains(t, out, "AbleToScale", "ScalingActive", "ValidMetricFound", "ScalingLimited", "New size: 1; reason: All metrics below target")
}

// TestHPAConditionsWithoutMetrics: a target without CPU requests cannot be
// scaled on utilization; the HPA says why, as upstream's does.
func TestHPAConditionsWithoutMetrics(t *testing.T) {
	_, c, k := startMetricsCluster(t, 1)
	ctx := context.Background()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "noreq"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "noreq"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "noreq"}, Annotations: map[string]string{simnode.CPUUsageAnnotation: "100m"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.wharf.local/testapp:latest"}}},
			},
		},
	}
	if _, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.Run("autoscale", "deployment", "noreq", "--cpu-percent=50", "--min=1", "--max=3")
	testserver.WaitFor(t, "ScalingActive False", 60*time.Second, func() (bool, error) {
		hpa, err := c.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "noreq", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range hpa.Status.Conditions {
			if cond.Type == "ScalingActive" && cond.Status == corev1.ConditionFalse && cond.Reason == "FailedGetResourceMetric" {
				testserver.Contains(t, cond.Message, "missing request for cpu")
				return true, nil
			}
		}
		return false, nil
	})
}
