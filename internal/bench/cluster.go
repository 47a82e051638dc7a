package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	wharfclient "wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/provider"
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

	if err := svc.exposedLoad(ctx, out, "expose"); err != nil {
		return err
	}

	var cut, expose, failover Latencies
	for i := 0; i < cfg.PowerCuts; i++ {
		t, err := svc.powerCut(ctx, fmt.Sprintf("cut-%d", i))
		if err != nil {
			return err
		}
		cut.Add(t.pods)
		expose.Add(t.expose)
		failover.Add(t.failover)
	}
	fmt.Fprintf(out, "cluster: LoadBalancer service create to its address answering from this machine: %s\n", expose.Summary())
	fmt.Fprintf(out, "cluster: power cut of the host holding a load balancer address to the address answering again: %s\n", failover.Summary())
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
	if err == nil {
		s.wharf, err = wharfclient.NewForConfig(rc)
	}
	if err == nil {
		// The template "bench": pods get no resolver, a benchmark never
		// hands them the machine's.
		_, err = s.wharf.ClusterTemplates("default").Create(ctx, &wharfv1.ClusterTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "bench"},
			Spec: wharfv1.ClusterTemplateSpec{COE: "kubernetes", Provider: "local",
				Network: wharfv1.Network{DNSNameserver: wharfv1.DNSNameserverNone}},
		}, metav1.CreateOptions{})
	}
	if err != nil {
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

// cutTimes are what one power cut measured.
type cutTimes struct {
	// expose: a LoadBalancer service's create to its address answering
	// from this machine; failover: the power cut of the host holding the
	// address to the address answering again; pods: the power cut to
	// all the pods running elsewhere.
	expose, failover, pods time.Duration
}

// powerCut makes a 1+2 cluster running 4 pods behind a LoadBalancer
// service, cuts the power of the worker holding the service's address,
// and times until the address answers again and until all 4 pods run on
// the other node.
func (s *benchService) powerCut(ctx context.Context, name string) (cutTimes, error) {
	var t cutTimes
	if _, _, _, err := s.createTimed(ctx, name, 2); err != nil {
		return t, err
	}
	defer s.delete(context.WithoutCancel(ctx), name)
	kc, err := s.clusterClient(name)
	if err != nil {
		return t, err
	}
	labels := map[string]string{"app": "cut"}
	p := sleepPod("x")
	p.Spec.Containers[0].Args = quietServer
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cut"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: p.Spec}},
	}
	if _, err := kc.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return t, err
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
			return t, fmt.Errorf("%s: pods not running", name)
		}
	}
	lbIP, expose, err := exposeLoadBalancer(ctx, kc, "cut", labels, corev1.ServiceExternalTrafficPolicyCluster)
	if err != nil {
		return t, fmt.Errorf("%s: %w", name, err)
	}
	t.expose = expose
	lp, err := local.New(local.Config{StateDir: s.hostsDir, Logger: s.env.Logger})
	if err != nil {
		return t, err
	}
	c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return t, err
	}
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		return t, err
	}
	var victim *provider.Host
	for i, h := range hosts {
		if h.Cluster.UID != string(c.UID) {
			continue
		}
		out, _ := exec.Command("ip", "-n", filepath.Base(lp.NetNS(h.Cluster, h.Name)), "-br", "addr").CombinedOutput()
		if strings.Contains(string(out), " "+lbIP+"/32") {
			victim = &hosts[i]
		}
	}
	if victim == nil {
		return t, fmt.Errorf("%s: no host holds %s", name, lbIP)
	}
	start := time.Now()
	if err := lp.PowerOff(ctx, victim.Cluster, victim.Name); err != nil {
		return t, err
	}
	if err := waitAnswer(ctx, "http://"+lbIP+"/healthz", time.Minute); err != nil {
		return t, fmt.Errorf("%s: %s after the power cut of %s: %w", name, lbIP, victim.Name, err)
	}
	t.failover = time.Since(start)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if n, _ := running(victim.Name); n == 4 {
			t.pods = time.Since(start)
			return t, nil
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("%s: pods not back after 3 minutes", name)
		}
	}
}

// exposedLoad compares, from this machine (outside the cluster), HTTP
// requests straight to a pod with requests through its services' load
// balancer addresses (externalTrafficPolicy Cluster: the holder may be
// another host, one hop more; Local: the pod's host holds it) and node
// ports, on a 1+2 cluster. The pod uses its host's network, the only pod
// address this machine reaches directly.
func (s *benchService) exposedLoad(ctx context.Context, out io.Writer, name string) error {
	if _, _, _, err := s.createTimed(ctx, name, 2); err != nil {
		return err
	}
	defer s.delete(context.WithoutCancel(ctx), name)
	kc, err := s.clusterClient(name)
	if err != nil {
		return err
	}
	labels := map[string]string{"app": "web"}
	web := sleepPod("web")
	web.Labels, web.Spec.HostNetwork, web.Spec.NodeName = labels, true, name+"-node-0"
	web.Spec.Containers[0].Args = quietServer
	if err := runPods(ctx, kc, []*corev1.Pod{web}, nil); err != nil {
		return err
	}
	lbIP, _, err := exposeLoadBalancer(ctx, kc, "web", labels, corev1.ServiceExternalTrafficPolicyCluster)
	if err != nil {
		return err
	}
	localIP, _, err := exposeLoadBalancer(ctx, kc, "web-local", labels, corev1.ServiceExternalTrafficPolicyLocal)
	if err != nil {
		return err
	}
	svc, err := kc.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		return err
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				addr[n.Name] = a.Address
			}
		}
	}
	nodePort := strconv.Itoa(int(svc.Spec.Ports[0].NodePort))
	targets := []struct{ what, url string }{
		{"pod (host network)", "http://" + addr[name+"-node-0"] + ":8080/healthz"},
		{"load balancer address", "http://" + lbIP + "/healthz"},
		{"load balancer address, policy Local", "http://" + localIP + "/healthz"},
		{"node port, the pod's host", "http://" + net.JoinHostPort(addr[name+"-node-0"], nodePort) + "/healthz"},
		{"node port, another host", "http://" + net.JoinHostPort(addr[name+"-node-1"], nodePort) + "/healthz"},
	}
	for _, t := range targets {
		if err := waitAnswer(ctx, t.url, 30*time.Second); err != nil {
			return fmt.Errorf("%s %s: %w", t.what, t.url, err)
		}
	}
	for _, keepAlive := range []bool{true, false} {
		mode := "keep-alive"
		if !keepAlive {
			mode = "a connection per request"
		}
		loads := make([]load, len(targets))
		for range 3 { // alternating rounds: the machine's drift hits all
			for i, t := range targets {
				loads[i].add(runLoad(ctx, t.url, 8, 3*time.Second, keepAlive))
			}
		}
		line := fmt.Sprintf("cluster: from this machine, %s, 8 clients: %s %s", mode, targets[0].what, loads[0].summary())
		for i, t := range targets[1:] {
			line += fmt.Sprintf("; %s %s (%.0f%% of direct)", t.what, loads[i+1].summary(), 100*loads[i+1].rps()/loads[0].rps())
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

// exposeLoadBalancer makes a LoadBalancer service (port 80 to 8080) of
// the pods with labels and returns its address and the time from the
// create to the address answering an HTTP request from this machine.
func exposeLoadBalancer(ctx context.Context, kc kubernetes.Interface, name string, labels map[string]string, policy corev1.ServiceExternalTrafficPolicy) (string, time.Duration, error) {
	start := time.Now()
	if _, err := kc.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels, ExternalTrafficPolicy: policy,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		return "", 0, err
	}
	var ip string
	for deadline := time.Now().Add(30 * time.Second); ip == ""; time.Sleep(5 * time.Millisecond) {
		svc, err := kc.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			ip = svc.Status.LoadBalancer.Ingress[0].IP
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("service %s: no load balancer address after 30 s", name)
		}
	}
	if err := waitAnswer(ctx, "http://"+ip+"/healthz", 30*time.Second); err != nil {
		return "", 0, fmt.Errorf("service %s at %s: %w", name, ip, err)
	}
	return ip, time.Since(start), nil
}

// waitAnswer polls url with short timeouts until it answers.
func waitAnswer(ctx context.Context, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: 100 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
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
