//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"wharf.dev/wharf/internal/testserver"
)

// TestHPA on a real node: kubectl top reports a CPU-burning container's
// usage as its cgroup counts it (within 10%), and a CPU-burning load
// scales a Deployment 1→N→1 through a HorizontalPodAutoscaler with a
// short scale-down window.
func TestHPA(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")

	t.Run("top-matches-cgroup", func(t *testing.T) {
		c.RunIn(`apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      containers:
      - name: burn
        image: registry.wharf.local/wharf/testapp:v1
        args: [burn, --cores, "0.3"]
        resources: {requests: {cpu: 100m, memory: 16Mi}}
`, "apply", "-f", "-")
		c.Run("rollout", "status", "deployment/burner", "--timeout=120s")
		out := c.Eventually(`burner-\S+\s+\d+m\s+\d+Mi`, "top", "pods")
		t.Logf("kubectl top pods:\n%s", out)
		testserver.Contains(t, c.Run("top", "pods", "--containers"), "burn")
		testserver.Contains(t, c.Eventually(`e2e\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%`, "top", "nodes"), "CPU(cores)")

		pods, err := c.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=burner"})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("burner pods: %v %d", err, len(pods.Items))
		}
		p := &pods.Items[0]
		id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
		cpuDir := fmt.Sprintf("/sys/fs/cgroup/cpuacct%s/pod%s/%s", c.cgroupRoot(), p.UID, id)
		memDir := fmt.Sprintf("/sys/fs/cgroup/memory%s/pod%s/%s", c.cgroupRoot(), p.UID, id)

		// The cgroup's rate over 15 s, the API's figure at the end of it.
		before, start := readCounter(t, filepath.Join(cpuDir, "cpuacct.usage")), time.Now()
		time.Sleep(15 * time.Second)
		after, end := readCounter(t, filepath.Join(cpuDir, "cpuacct.usage")), time.Now()
		cgCores := float64(after-before) / end.Sub(start).Seconds() / 1e9
		m := podMetrics(t, c, p.Name)
		apiCores := m.Containers[0].Usage.Cpu().AsApproximateFloat64()
		t.Logf("cpu: cgroup %.3f cores, metrics API %.3f cores (window %v)", cgCores, apiCores, m.Window.Duration)
		if math.Abs(apiCores-cgCores) > 0.1*cgCores {
			t.Errorf("metrics API says %.3f cores, the cgroup %.3f: more than 10%% apart", apiCores, cgCores)
		}

		usage := readCounter(t, filepath.Join(memDir, "memory.usage_in_bytes"))
		inactive := statField(t, filepath.Join(memDir, "memory.stat"), "total_inactive_file")
		cgMem := float64(usage - min(inactive, usage))
		apiMem := m.Containers[0].Usage.Memory().AsApproximateFloat64()
		t.Logf("memory: cgroup working set %.0f bytes, metrics API %.0f", cgMem, apiMem)
		// The API's figure is from the last scrape (up to 15 s old) and
		// the burner's few MiB move by a page or two meanwhile: 10 %, or
		// 1 MiB for so small a process.
		if math.Abs(apiMem-cgMem) > max(0.1*cgMem, 1<<20) {
			t.Errorf("metrics API says %.0f bytes of working set, the cgroup %.0f: more than 10%% (and 1 MiB) apart", apiMem, cgMem)
		}
		c.Run("delete", "deployment", "burner", "--wait=true")
	})

	t.Run("scale-up-and-down", func(t *testing.T) {
		// Each pod burns 0.25 cores (250% of its request) for 60 s from its
		// start, then idles: the HPA goes up to its max, then back to 1.
		c.RunIn(`apiVersion: apps/v1
kind: Deployment
metadata: {name: load}
spec:
  replicas: 1
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec:
      containers:
      - name: burn
        image: registry.wharf.local/wharf/testapp:v1
        args: [burn, --cores, "0.25", --for, 60s]
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: load}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: load}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 15}
`, "apply", "-f", "-")
		start := time.Now()
		testserver.WaitFor(t, "the HPA to scale load up", 180*time.Second, func() (bool, error) {
			s, err := c.client.AppsV1().Deployments("default").GetScale(context.Background(), "load", metav1.GetOptions{})
			return err == nil && s.Spec.Replicas > 1, err
		})
		up := time.Since(start)
		peak := int32(0)
		testserver.WaitFor(t, "the HPA to scale load back to 1", 300*time.Second, func() (bool, error) {
			s, err := c.client.AppsV1().Deployments("default").GetScale(context.Background(), "load", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			peak = max(peak, s.Spec.Replicas)
			return s.Spec.Replicas == 1 && peak > 1, nil
		})
		t.Logf("load: scaled up after %v, peak %d replicas, back to 1 after %v", up.Round(time.Second), peak, time.Since(start).Round(time.Second))
		out := c.Run("describe", "hpa", "load")
		testserver.Contains(t, out, "SuccessfulRescale", "above target", "All metrics below target")
		c.Run("delete", "hpa,deployment", "load")
	})
}

func podMetrics(t *testing.T, c *cluster, name string) metricsv1beta1.PodMetrics {
	t.Helper()
	raw := c.Run("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/"+name)
	var m metricsv1beta1.PodMetrics
	if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Containers) != 1 {
		t.Fatalf("pod metrics %s: %v", raw, err)
	}
	return m
}

func readCounter(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statField(t *testing.T, path, key string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}
