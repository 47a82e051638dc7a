package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/up"
)

// UpConfig sizes the `wharf up` benchmark.
type UpConfig struct{ Runs int }

// Up measures `wharf up` from nothing (a fresh state dir) to the node
// Ready, Runs times, purging in between. Needs root and containerd.
func Up(ctx context.Context, env Env, out io.Writer, cfg UpConfig) error {
	var times Latencies
	for i := 0; i < cfg.Runs; i++ {
		o := up.Options{StateDir: filepath.Join(env.WorkDir, fmt.Sprintf("up-%d", i)), Binary: env.Bin, NodeIP: "127.0.0.1", NodeName: "bench"}
		start := time.Now()
		err := up.Up(ctx, io.Discard, o)
		d := time.Since(start)
		if derr := up.Down(context.WithoutCancel(ctx), io.Discard, o, true); err == nil {
			err = derr
		}
		if err != nil {
			return err
		}
		times.Add(d)
		fmt.Fprintf(out, "up: run %d: node Ready %s after wharf up started\n", i+1, round(d))
	}
	fmt.Fprintf(out, "up: wharf up to node Ready: %s\n", times.Summary())
	return nil
}

// PodsConfig sizes the node benchmark.
type PodsConfig struct {
	Pods, Batch, Crashes, RSSPods int
}

// Pods measures, on a one-node cluster of this machine: pod startup
// latency (create to Running as a watch sees it, image present), container
// crash to restarted, and the agent's memory with RSSPods pods running.
func Pods(ctx context.Context, env Env, out io.Writer, cfg PodsConfig) error {
	if cfg.Pods > node.MaxPods || cfg.Batch < 1 {
		return fmt.Errorf("--pods %d --batch %d: a node runs 1 to %d pods, at least one at a time", cfg.Pods, cfg.Batch, node.MaxPods)
	}
	o, c, err := upNode(ctx, env)
	if err != nil {
		return err
	}
	defer up.Down(context.WithoutCancel(ctx), io.Discard, o, true)
	pods := c.CoreV1().Pods("default")

	// Warm up: the image is pulled once, so every measured pod has it.
	if err := runPods(ctx, c, []*corev1.Pod{sleepPod("warmup")}, nil); err != nil {
		return err
	}
	pods.Delete(ctx, "warmup", metav1.DeleteOptions{})

	var startup Latencies
	fmt.Fprintf(out, "pods: starting %d pods, %d at a time...\n", cfg.Pods, cfg.Batch)
	before := readNodeCPU(o)
	for i := 0; i < cfg.Pods; i += cfg.Batch {
		var batch []*corev1.Pod
		for j := i; j < i+cfg.Batch && j < cfg.Pods; j++ {
			batch = append(batch, sleepPod(fmt.Sprintf("start-%d", j)))
		}
		if err := runPods(ctx, c, batch, &startup); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "pods: create to Running (watch)  %s\n", startup.Summary())
	fmt.Fprintf(out, "pods: CPU per pod started: %s\n", readNodeCPU(o).since(before, cfg.Pods))

	fmt.Fprintf(out, "pods: agent memory with %d pods running: %s\n", cfg.Pods, agentMemory(o.StateDir))
	// Down to RSSPods pods for the agent's memory at that size.
	for j := cfg.RSSPods; j < cfg.Pods; j++ {
		pods.Delete(ctx, fmt.Sprintf("start-%d", j), metav1.DeleteOptions{})
	}
	if err := waitCount(ctx, c, cfg.RSSPods); err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	fmt.Fprintf(out, "pods: agent memory with %d pods running: %s\n", cfg.RSSPods, agentMemory(o.StateDir))

	var crash Latencies
	for i := 0; i < cfg.Crashes; i++ {
		d, err := crashOnce(ctx, c, fmt.Sprintf("crash-%d", i))
		if err != nil {
			return err
		}
		crash.Add(d)
	}
	fmt.Fprintf(out, "pods: container crash to running again (first restart) %s\n", crash.Summary())
	return nil
}

// upNode runs `wharf up` (node "bench", no resolver) in the work dir and
// returns its options, for up.Down, and an unthrottled client.
func upNode(ctx context.Context, env Env, tweak ...func(*up.Options)) (up.Options, kubernetes.Interface, error) {
	o := up.Options{StateDir: filepath.Join(env.WorkDir, "node"), Binary: env.Bin, NodeIP: "127.0.0.1", NodeName: "bench"}
	for _, f := range tweak {
		f(&o)
	}
	if err := up.Up(ctx, io.Discard, o); err != nil {
		return o, nil, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(o.StateDir, "server", "admin.kubeconfig"))
	if err != nil {
		up.Down(context.WithoutCancel(ctx), io.Discard, o, true)
		return o, nil, err
	}
	rc.QPS, rc.Burst = -1, -1
	return o, kubernetes.NewForConfigOrDie(rc), nil
}

func sleepPod(name string) *corev1.Pod {
	grace := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "pods"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "c", Image: images.Ref("testapp"), Args: []string{"sleep"}, ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		},
	}
}

// runPods creates pods at once and waits until all run, recording each
// one's create-to-Running time as a watch sees it.
func runPods(ctx context.Context, c kubernetes.Interface, batch []*corev1.Pod, lat *Latencies) error {
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer w.Stop()
	created := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(batch))
	for _, p := range batch {
		wg.Add(1)
		go func(p *corev1.Pod) {
			defer wg.Done()
			start := time.Now()
			if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			created[p.Name] = start
			mu.Unlock()
		}(p)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	left := map[string]bool{}
	for _, p := range batch {
		left[p.Name] = true
	}
	timeout := time.After(2 * time.Minute)
	for len(left) > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch ended with %d pods not running", len(left))
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted || !left[p.Name] || p.Status.Phase != corev1.PodRunning {
				continue
			}
			delete(left, p.Name)
			if lat != nil {
				mu.Lock()
				lat.Add(time.Since(created[p.Name]))
				mu.Unlock()
			}
		case <-timeout:
			return fmt.Errorf("%d pods not running after 2 minutes", len(left))
		}
	}
	return nil
}

func waitCount(ctx context.Context, c kubernetes.Interface, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=pods"})
		if err == nil && len(l.Items) == n {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pods did not go down to %d", n)
}

// quietServer are the arguments of a testapp HTTP server on 8080 that
// logs no line per request: through containerd's log pipeline a line
// costs more CPU than the answer, and would weigh on every figure of a
// benchmark of the data path.
var quietServer = []string{"serve", "--port=8080", "--log-requests=false"}

// crashOnce runs a testapp server, makes its process exit (GET /exit) and
// measures until the watch shows it running again with one restart.
func crashOnce(ctx context.Context, c kubernetes.Interface, name string) (time.Duration, error) {
	p := sleepPod(name)
	p.Spec.Containers[0].Args = []string{"serve", "--port=8080"}
	if err := runPods(ctx, c, []*corev1.Pod{p}, nil); err != nil {
		return 0, err
	}
	got, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: got.ResourceVersion})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	start, err := askToExit(ctx, "http://"+got.Status.PodIP+":8080/exit?code=1")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				return 0, fmt.Errorf("%s: watch ended before a restart", name)
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || len(pod.Status.ContainerStatuses) == 0 {
				continue
			}
			cs := pod.Status.ContainerStatuses[0]
			if cs.RestartCount >= 1 && cs.State.Running != nil {
				return time.Since(start), nil
			}
		case <-timeout:
			return 0, fmt.Errorf("%s not restarted within a minute", name)
		}
	}
}

// askToExit asks the test app at url to exit, and returns when it did.
// Running means the process started, not that it listens yet: a refused
// connection is tried again. The app exits before it answers, so any
// other error is the expected one.
func askToExit(ctx context.Context, url string) (time.Time, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		start := time.Now()
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return start, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return start, nil
		}
		if time.Now().After(deadline) {
			return start, fmt.Errorf("the app did not listen within 10s: %w", err)
		}
		select {
		case <-ctx.Done():
			return start, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// nodeCPU is the CPU time a wharf up cluster used so far: its node's
// cgroup subtree (containerd, shims, runc, CNI plugins, the containers)
// and the agent's and server's processes.
type nodeCPU struct {
	node, agent, server time.Duration
}

func readNodeCPU(o up.Options) nodeCPU {
	var c nodeCPU
	c.node = -1 // unknown
	if root, err := up.CgroupRoot(o.StateDir); err == nil {
		if data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", root, "cpuacct.usage")); err == nil {
			ns, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			c.node = time.Duration(ns)
		}
	}
	c.agent = processCPU(filepath.Join(o.StateDir, "run", "agent.pid"))
	c.server = processCPU(filepath.Join(o.StateDir, "run", "server.pid"))
	return c
}

// since describes the CPU time used since before, per pod.
func (c nodeCPU) since(before nodeCPU, pods int) string {
	per := func(d time.Duration) time.Duration { return (d / time.Duration(pods)).Round(time.Millisecond) }
	agent, server := c.agent-before.agent, c.server-before.server
	if c.node < 0 || before.node < 0 {
		return fmt.Sprintf("unknown: the node's cgroup was not read (agent %s; server %s)", per(agent), per(server))
	}
	node := c.node - before.node
	return fmt.Sprintf("%s (containerd, shims, runtime, plugin and containers %s; agent %s; server %s)",
		per(node+agent+server), per(node), per(agent), per(server))
}

// processCPU is the user and system time of the process in pidFile.
func processCPU(pidFile string) time.Duration {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	cpu, _ := pidCPU(pid)
	return cpu
}

// pidCPU is the user and system time of a process, and its parent's pid.
func pidCPU(pid int) (cpu time.Duration, ppid int) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields after the command (which may hold spaces): the parent is the
	// 2nd, utime and stime are the 12th and 13th, in clock ticks (100 a
	// second on Linux).
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, ppid
}

// familyCPU is the user and system time of a process and its children
// (nginx's master and workers).
func familyCPU(pid int) time.Duration {
	total, _ := pidCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if child, err := strconv.Atoi(e.Name()); err == nil && child != pid {
			if cpu, ppid := pidCPU(child); ppid == pid {
				total += cpu
			}
		}
	}
	return total
}

// agentMemory describes the agent's memory: RSS, the anonymous part (its
// own heap and stacks) and PSS, which splits the pages of the wharf binary
// it shares with the server between them.
func agentMemory(stateDir string) string {
	data, err := os.ReadFile(filepath.Join(stateDir, "run", "agent.pid"))
	if err != nil {
		return err.Error()
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return err.Error()
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	rollup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	field := func(text []byte, name string) int64 {
		for _, line := range strings.Split(string(text), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
		return 0
	}
	return fmt.Sprintf("RSS %s (anonymous %s, file-backed %s), PSS %s",
		mb(field(status, "VmRSS:")), mb(field(status, "RssAnon:")), mb(field(status, "RssFile:")), mb(field(rollup, "Pss:")))
}
