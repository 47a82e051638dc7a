//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"wharf.dev/wharf/internal/testserver"
)

const testapp = "registry.wharf.local/wharf/testapp:v1"

// TestResilience: restarts of crashed or unhealthy containers, readiness,
// and the agent, containerd and a whole node going away and coming back.
// The subtests share one cluster and run in order.
func TestResilience(t *testing.T) {
	c := upCluster(t)
	ctx := testContext(t)
	apply := func(manifest string) {
		t.Helper()
		out, err := c.Cmd(manifest, "apply", "-f", "-").CombinedOutput()
		if err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
	}
	pod := func(selector string) *corev1.Pod {
		t.Helper()
		var found *corev1.Pod
		testserver.WaitFor(t, "a running pod "+selector, 90*time.Second, func() (bool, error) {
			l, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return false, err
			}
			for i := range l.Items {
				p := &l.Items[i]
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
					found = p
					return true, nil
				}
			}
			return false, fmt.Errorf("%d pods", len(l.Items))
		})
		return found
	}
	restarts := func(p *corev1.Pod) int32 {
		got, err := c.client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || len(got.Status.ContainerStatuses) == 0 {
			return -1
		}
		return got.Status.ContainerStatuses[0].RestartCount
	}
	waitRestarts := func(p *corev1.Pod, want int32) {
		t.Helper()
		testserver.WaitFor(t, fmt.Sprintf("%s restarted %d times and running", p.Name, want), 60*time.Second, func() (bool, error) {
			got, err := c.client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cs := got.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].RestartCount >= want && cs[0].State.Running != nil, fmt.Errorf("%+v", cs)
		})
	}

	// waitReady waits until the pod's Ready condition is reported as want.
	waitReady := func(p *corev1.Pod, want bool) {
		t.Helper()
		testserver.WaitFor(t, fmt.Sprintf("%s Ready=%v", p.Name, want), 30*time.Second, func() (bool, error) {
			got, err := c.client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			return err == nil && podReady(got) == want, err
		})
	}

	apply(deploymentYAML("app", `["serve","--port=8080"]`, `
        readinessProbe:
          httpGet: {path: /readyz, port: 8080}
          periodSeconds: 1`))

	t.Run("kill -9 of the main process restarts it", func(t *testing.T) {
		p := pod("app=app")
		// Ready: the app has started and said "serving" (killed before,
		// its previous log would be empty).
		waitReady(p, true)
		before := restarts(p)
		pid := c.mainPid(t, p)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitRestarts(p, before+1)
		// The previous container's log is still there.
		testserver.Contains(t, c.Run("logs", p.Name, "--previous"), "serving")
	})

	t.Run("a failing liveness probe restarts the container", func(t *testing.T) {
		apply(`apiVersion: v1
kind: Pod
metadata: {name: live, labels: {app: live}}
spec:
  containers:
  - name: c
    image: ` + testapp + `
    command: ["sh", "-c", "touch /tmp/healthy && exec /testapp serve"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 1
`)
		p := pod("app=live")
		c.Run("exec", "live", "--", "rm", "/tmp/healthy")
		waitRestarts(p, 1)
	})

	t.Run("a failing readiness probe makes the pod unready, and back", func(t *testing.T) {
		p := pod("app=app")
		waitReady(p, true)
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=false")
		waitReady(p, false)
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=true")
		waitReady(p, true)
	})

	t.Run("a killed agent adopts its pods without restarting them", func(t *testing.T) {
		p := pod("app=app")
		before := containerIDs(t, c, ctx)
		killPidFile(t, filepath.Join(c.stateDir, "run", "agent.pid"))
		c.up()
		// The new agent has synced the pod once it reports a change of the
		// pod's readiness: its probes run against the adopted container.
		waitReady(p, true)
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=false")
		waitReady(p, false)
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=true")
		waitReady(p, true)
		after := containerIDs(t, c, ctx)
		for name, id := range before {
			if after[name] != id {
				t.Errorf("pod %s: container %s became %s after the agent restarted", name, id, after[name])
			}
		}
		if r := restarts(p); r != restarts(p) || r < 0 {
			t.Errorf("restart count unreadable")
		}
	})

	t.Run("a killed containerd comes back and pods keep serving", func(t *testing.T) {
		p := pod("app=app")
		r0 := restarts(p)
		pidFile := filepath.Join(c.stateDir, "node", "containerd", "containerd.pid")
		old := killPidFile(t, pidFile)
		httpGet(t, "http://"+p.Status.PodIP+":8080/") // served while containerd is down or restarting
		testserver.WaitFor(t, "containerd restarted by the agent", 30*time.Second, func() (bool, error) {
			pid, err := readPid(pidFile)
			return err == nil && pid != old && syscall.Kill(pid, 0) == nil, err
		})
		// The agent carries on: it still sees and reports the pod.
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=false")
		testserver.WaitFor(t, "Ready=false reported after the restart", 30*time.Second, func() (bool, error) {
			got, err := c.client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			return err == nil && !podReady(got), err
		})
		httpPost(t, "http://"+p.Status.PodIP+":8080/readyz?ready=true")
		if r := restarts(p); r != r0 {
			t.Errorf("restart count %d -> %d: containerd's restart restarted the container", r0, r)
		}
	})

	t.Run("an agent away longer than the grace period: NotReady, eviction, recovery", func(t *testing.T) {
		old := pod("app=app")
		killPidFile(t, filepath.Join(c.stateDir, "run", "agent.pid"))
		c.Eventually(`e2e\s+NotReady`, "get", "nodes")
		testserver.WaitFor(t, "the pod evicted and a replacement pending", 60*time.Second, func() (bool, error) {
			l, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
			if err != nil {
				return false, err
			}
			evicted, pending := false, false
			for _, p := range l.Items {
				evicted = evicted || (p.Name == old.Name && p.DeletionTimestamp != nil)
				pending = pending || (p.Name != old.Name && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodPending)
			}
			return evicted && pending, nil
		})
		c.up()
		c.Eventually(`e2e\s+Ready`, "get", "nodes")
		testserver.WaitFor(t, "the replacement running and the old pod gone", 90*time.Second, func() (bool, error) {
			l, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "app"}.String()})
			if err != nil || len(l.Items) != 1 {
				return false, err
			}
			p := l.Items[0]
			return p.Name != old.Name && p.Status.Phase == corev1.PodRunning, nil
		})
	})

	t.Run("a missing image or command shows in status, with back-off", func(t *testing.T) {
		apply(`apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers: [{name: c, image: registry.wharf.local/wharf/does-not-exist:v1}]
---
apiVersion: v1
kind: Pod
metadata: {name: nocommand}
spec:
  containers: [{name: c, image: ` + testapp + `, command: ["/no/such/command"]}]
`)
		c.Eventually(`noimage\s+0/1\s+(ErrImagePull|ImagePullBackOff)`, "get", "pod", "noimage")
		c.Eventually(`noimage\s+0/1\s+ImagePullBackOff`, "get", "pod", "noimage")
		out := c.Eventually(`nocommand\s+0/1\s+(RunContainerError|CreateContainerError|StartError|CrashLoopBackOff|Error)`, "get", "pod", "nocommand")
		t.Logf("%s", out)
		desc := c.Run("describe", "pod", "nocommand")
		testserver.Contains(t, desc, "/no/such/command")
		// Nothing else suffered.
		p := pod("app=app")
		httpGet(t, "http://"+p.Status.PodIP+":8080/healthz")
	})
}

func deploymentYAML(name, args, extra string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: %[2]s
        args: %[3]s%[4]s
`, name, testapp, args, extra)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// mainPid finds a pod's first container's main process from the host,
// through its cgroup (<cgroup root>/pod<uid>/<container id>; the cgroup
// root is what `wharf up` chose for the state dir).
func (c *cluster) mainPid(t *testing.T, p *corev1.Pod) int {
	t.Helper()
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	path := fmt.Sprintf("/sys/fs/cgroup/pids%s/pod%s/%s/cgroup.procs", c.cgroupRoot(), p.UID, id)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("container's processes: %v", err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(data))[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// killPidFile sends SIGKILL to the process a pid file names and waits for it to go.
func killPidFile(t *testing.T, path string) int {
	t.Helper()
	pid, err := readPid(path)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	testserver.WaitFor(t, fmt.Sprintf("pid %d gone", pid), 10*time.Second, func() (bool, error) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// Gone, or a zombie whose parent has not reaped it yet.
		return err != nil || strings.Contains(string(data), ") Z "), nil
	})
	return pid
}

func containerIDs(t *testing.T, c *cluster, ctx interface{ Done() <-chan struct{} }) map[string]string {
	t.Helper()
	l, err := c.client.CoreV1().Pods("default").List(testContext(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, p := range l.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				ids[p.Name+"/"+cs.Name] = cs.ContainerID
			}
		}
	}
	return ids
}
