package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	wharfclient "wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/provider/local"
)

// ClusterConfig sizes the cluster service benchmark.
type ClusterConfig struct {
	Runs, BigNodes, PowerCuts int
	Saturate                  time.Duration
}

// Cluster measures the cluster service on this machine (root, local
// provider): create to CREATE_COMPLETE and to a first pod Running for
// 1 master + 2 nodes and 1 + BigNodes, the memory of a 1+2 cluster, a
// host's power cut to its pods running elsewhere, and whether nodes stay
// Ready while the CPUs are saturated.
func Cluster(ctx context.Context, env Env, out io.Writer, cfg ClusterConfig) error {
	svc, err := startService(ctx, env)
	if err != nil {
		return err
	}
	defer svc.stop()
	if _, err := svc.wharf.ClusterTemplates("default").Create(ctx, &wharfv1.ClusterTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		// Pods get no resolver: a benchmark never hands them the machine's.
		Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes", Provider: "local",
			Network: wharfv1.Network{DNSNameserver: wharfv1.DNSNameserverNone}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}

	for _, size := range []int{2, cfg.BigNodes} {
		var complete, firstPod Latencies
		for i := 0; i < cfg.Runs; i++ {
			name := fmt.Sprintf("b%d-%d", size, i)
			c, d, p, err := svc.createTimed(ctx, name, size)
			if err != nil {
				return err
			}
			complete.Add(d)
			firstPod.Add(p)
			if size == 2 && i == 0 {
				fmt.Fprintf(out, "cluster: memory of a 1+2 cluster with one pod (every process of its hosts): %s\n", clusterMemory(c))
			}
			if err := svc.delete(ctx, name); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "cluster: 1+%d create to CREATE_COMPLETE (nodes Ready): %s\n", size, complete.Summary())
		fmt.Fprintf(out, "cluster: 1+%d create to a first pod Running:     %s\n", size, firstPod.Summary())
	}

	var cut Latencies
	for i := 0; i < cfg.PowerCuts; i++ {
		d, err := svc.powerCut(ctx, fmt.Sprintf("cut-%d", i))
		if err != nil {
			return err
		}
		cut.Add(d)
	}
	fmt.Fprintf(out, "cluster: host power cut to all its pods Running elsewhere: %s\n", cut.Summary())

	if cfg.Saturate > 0 {
		flaps, err := svc.saturated(ctx, cfg.Saturate)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "cluster: %s with both CPUs saturated: %d NotReady transitions of a 1+2 cluster's nodes\n", cfg.Saturate, flaps)
	}
	return nil
}

// benchService is a `wharf service` child process.
type benchService struct {
	env      Env
	dir      string
	wharf    *wharfclient.Client
	hostsDir string
}

func startService(ctx context.Context, env Env) (*benchService, error) {
	// Short: containerd's sockets live below the hosts' state dirs.
	dir, err := os.MkdirTemp("", "wb")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &benchService{env: env, dir: dir, hostsDir: filepath.Join(dir, "hosts")}
	if out, err := s.cli("service", "start", "--state-dir", dir, "--listen", fmt.Sprintf("0.0.0.0:%d", port)); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("service start: %v\n%s", err, out)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		s.stop()
		return nil, err
	}
	if s.wharf, err = wharfclient.NewForConfig(rc); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *benchService) cli(args ...string) (string, error) {
	cmd := exec.Command(s.env.Bin, args...)
	cmd.Env = append(os.Environ(), "WHARF_SERVICE_KUBECONFIG="+filepath.Join(s.dir, "admin.kubeconfig"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop stops the service and purges it: every host left, the network,
// the state dir.
func (s *benchService) stop() {
	if out, err := s.cli("service", "stop", "--state-dir", s.dir, "--purge"); err != nil {
		s.env.Logger.Error("purge of the benchmark's service", "err", err, "output", out)
	}
	os.RemoveAll(s.dir)
}

// createTimed creates a 1+nodes cluster and returns it with the time to
// CREATE_COMPLETE and to a first pod Running, both from the create request.
func (s *benchService) createTimed(ctx context.Context, name string, nodes int) (*wharfv1.Cluster, time.Duration, time.Duration, error) {
	start := time.Now()
	if _, err := s.wharf.Clusters("default").Create(ctx, &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       wharfv1.ClusterSpec{Template: "bench", MasterCount: 1, NodeCount: int32(nodes)},
	}, metav1.CreateOptions{}); err != nil {
		return nil, 0, 0, err
	}
	c, err := s.waitStatus(ctx, name, wharfv1.StatusCreateComplete, 5*time.Minute)
	if err != nil {
		return nil, 0, 0, err
	}
	complete := time.Since(start)
	kc, err := s.clusterClient(name)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := runPods(ctx, kc, []*corev1.Pod{sleepPod("first")}, nil); err != nil {
		return nil, 0, 0, err
	}
	return c, complete, time.Since(start), nil
}

func (s *benchService) waitStatus(ctx context.Context, name, want string, timeout time.Duration) (*wharfv1.Cluster, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && c.Status.Status == want {
			return c, nil
		}
		if err == nil && strings.HasSuffix(c.Status.Status, "_FAILED") {
			return nil, fmt.Errorf("cluster %s %s: %s", name, c.Status.Status, c.Status.StatusReason)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("cluster %s not %s after %s", name, want, timeout)
}

func (s *benchService) delete(ctx context.Context, name string) error {
	if err := s.wharf.Clusters("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("cluster %s not deleted after 2 minutes", name)
}

func (s *benchService) clusterClient(name string) (kubernetes.Interface, error) {
	cfgText, err := s.cli("cluster", "config", name)
	if err != nil {
		return nil, fmt.Errorf("cluster config: %v: %s", err, cfgText)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(cfgText))
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = -1, -1
	return kubernetes.NewForConfig(rc)
}

// clusterMemory sums the PSS of every process in the cluster's cgroups
// (its hosts' wharf processes, containerd, shims, containers).
func clusterMemory(c *wharfv1.Cluster) string {
	key := c.Name + "-" + string(c.UID)[:8]
	var pss, procs int64
	filepath.Walk("/sys/fs/cgroup/pids/wharf/"+key, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(data)) {
			rollup, err := os.ReadFile("/proc/" + f + "/smaps_rollup")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(rollup), "\n") {
				if fl := strings.Fields(line); len(fl) >= 2 && fl[0] == "Pss:" {
					var kb int64
					fmt.Sscan(fl[1], &kb)
					pss += kb * 1024
					procs++
				}
			}
		}
		return nil
	})
	return fmt.Sprintf("PSS %s in %d processes", mb(pss), procs)
}

// powerCut makes a 1+2 cluster running 4 pods, cuts the power of a worker
// holding some, and times until all 4 run on the other node.
func (s *benchService) powerCut(ctx context.Context, name string) (time.Duration, error) {
	if _, _, _, err := s.createTimed(ctx, name, 2); err != nil {
		return 0, err
	}
	defer s.delete(context.WithoutCancel(ctx), name)
	kc, err := s.clusterClient(name)
	if err != nil {
		return 0, err
	}
	labels := map[string]string{"app": "cut"}
	p := sleepPod("x")
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cut"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: p.Spec}},
	}
	if _, err := kc.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	running := func(notOn string) (int, error) {
		l, err := kc.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=cut"})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != notOn {
				n++
			}
		}
		return n, nil
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if n, _ := running(""); n == 4 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: pods not running", name)
		}
	}
	victim := name + "-node-0"
	lp, err := local.New(local.Config{StateDir: s.hostsDir, Logger: s.env.Logger})
	if err != nil {
		return 0, err
	}
	c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, h := range hosts {
		if h.Name == victim && h.Cluster.UID == string(c.UID) {
			if err := lp.PowerOff(ctx, h.Cluster, h.Name); err != nil {
				return 0, err
			}
		}
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if n, _ := running(victim); n == 4 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: pods not back after 3 minutes", name)
		}
	}
}

// saturated runs busy loops on every CPU for d next to a 1+2 cluster and
// counts its nodes' transitions out of Ready.
func (s *benchService) saturated(ctx context.Context, d time.Duration) (int, error) {
	name := "busy"
	if _, _, _, err := s.createTimed(ctx, name, 2); err != nil {
		return 0, err
	}
	defer s.delete(context.WithoutCancel(ctx), name)
	kc, err := s.clusterClient(name)
	if err != nil {
		return 0, err
	}
	var burners []*exec.Cmd
	for i := 0; i < 2*numCPU(); i++ {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		burners = append(burners, cmd)
	}
	defer func() {
		for _, b := range burners {
			syscall.Kill(-b.Process.Pid, syscall.SIGKILL)
			b.Wait()
		}
	}()
	flaps := 0
	ready := map[string]bool{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		l, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, n := range l.Items {
			r := nodeIsReady(&n)
			if was, seen := ready[n.Name]; seen && was && !r {
				flaps++
			}
			ready[n.Name] = r
		}
	}
	return flaps, nil
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	n := strings.Count(string(data), "processor\t:")
	if n == 0 {
		return 1
	}
	return n
}
