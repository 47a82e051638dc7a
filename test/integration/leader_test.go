//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testserver"
)

// haServer is one `wharf server` of a several-server control plane, run in
// the test's network namespace at its own address.
type haServer struct {
	*serverProc
	addr   string
	id     string // <data-dir>/server-id
	client kubernetes.Interface
}

// manager is the field manager of the server's controllers.
func (s *haServer) manager() string { return "wharf-controllers-" + s.id }

// haCluster is three servers on one etcd, all in a network namespace the
// test made, on addresses 10.77.0.1-3 of its loopback interface: the
// kubernetes service publishes no loopback address, and nothing here may
// use an address of the machine's own.
type haCluster struct {
	t       *testing.T
	nsPath  string
	servers []*haServer
}

// startHACluster starts etcd (Debian's, inside the namespace) and n
// servers sharing its CA, service account key and tokens.
func startHACluster(t *testing.T, n int) *haCluster {
	t.Helper()
	if _, err := os.Stat("/usr/bin/etcd"); err != nil {
		t.Skip("needs Debian's etcd (/usr/bin/etcd)")
	}
	name := fmt.Sprintf("wh-elect-%d", os.Getpid())
	c := &haCluster{t: t, nsPath: "/var/run/netns/" + name}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run("-n", name, "link", "set", "lo", "up")
	for i := 1; i <= n; i++ {
		run("-n", name, "addr", "add", fmt.Sprintf("10.77.0.%d/32", i), "dev", "lo")
	}

	dir := t.TempDir()
	c.start(filepath.Join(dir, "etcd"), "/usr/bin/etcd", "--name", "ha", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "ha=http://127.0.0.1:2380")
	testserver.WaitFor(t, "etcd to listen", 30*time.Second, func() (bool, error) {
		conn, err := c.dial(context.Background(), "tcp", "127.0.0.1:2379")
		if err == nil {
			conn.Close()
		}
		return err == nil, err
	})
	for i := 1; i <= n; i++ {
		dataDir := filepath.Join(dir, fmt.Sprintf("s%d", i))
		if i > 1 { // the first server's secrets: one cluster
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			copyTree(t, filepath.Join(dir, "s1", "pki"), filepath.Join(dataDir, "pki"))
			copyTree(t, filepath.Join(dir, "s1", "tokens.json"), filepath.Join(dataDir, "tokens.json"))
		}
		c.servers = append(c.servers, c.startServer(dataDir, fmt.Sprintf("10.77.0.%d", i)))
	}
	return c
}

// start runs a command in the namespace; it dies with the test binary.
func (c *haCluster) start(logPath string, args ...string) *serverProc {
	c.t.Helper()
	logf, err := os.OpenFile(logPath+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + c.nsPath, "--"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &serverProc{t: c.t, dataDir: logPath, cmd: cmd, log: logf}
	c.t.Cleanup(func() {
		p.kill()
		if c.t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			c.t.Logf("%s (end):\n%s", filepath.Base(logf.Name()), out)
		}
	})
	return p
}

func (c *haCluster) startServer(dataDir, addr string) *haServer {
	c.t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	p := c.start(dataDir, wharfBin, "server", "--data-dir", dataDir, "--listen", addr+":6443", "--advertise-address", addr,
		"--etcd-servers", "http://127.0.0.1:2379")
	p.dataDir = dataDir
	s := &haServer{serverProc: p, addr: addr}
	up := false
	defer func() {
		if !up {
			out, _ := os.ReadFile(p.log.Name())
			c.t.Logf("server log:\n%s", out)
		}
	}()
	testserver.WaitFor(c.t, "server "+addr+" to answer", 60*time.Second, func() (bool, error) {
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
		if err != nil {
			return false, err
		}
		cfg.Dial = c.dial
		cfg.QPS, cfg.Burst, cfg.Timeout = -1, -1, 5*time.Second
		if s.client, err = kubernetes.NewForConfig(cfg); err != nil {
			return false, err
		}
		_, err = s.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err == nil, err
	})
	id, err := os.ReadFile(filepath.Join(dataDir, "server-id"))
	if err != nil {
		c.t.Fatal(err)
	}
	s.id = strings.TrimSpace(string(id))
	up = true
	return s
}

// dial connects from the test's network namespace: the socket is made on
// a thread moved there and back; the connection then works from any
// thread. (The thread must not end in the namespace: a server started
// from it would get its Pdeathsig.)
func (c *haCluster) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		h, err := netns.GetFromPath(c.nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v: %s", from, to, err, out)
	}
}

// holder returns the server holding the controllers' lease, read through via.
func (c *haCluster) holder(ctx context.Context, via *haServer) (*haServer, error) {
	l, err := via.client.CoordinationV1().Leases("kube-system").Get(ctx, "wharf-controllers", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range c.servers {
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == s.id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("lease held by %v, not one of the servers", ptr.Deref(l.Spec.HolderIdentity, ""))
}

// metric reads a metric of the server's /metrics (0 if absent).
func (s *haServer) metric(ctx context.Context, name string) (float64, error) {
	raw, err := s.client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, nil
}

// kubernetesEndpoints is what default/kubernetes lists: the Endpoints'
// and the EndpointSlice's addresses, each sorted, as "a,b|a,b".
func kubernetesEndpoints(ctx context.Context, c kubernetes.Interface) (string, error) {
	ep, err := c.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	var eps, sl []string
	for _, s := range ep.Subsets {
		for _, a := range s.Addresses {
			eps = append(eps, fmt.Sprintf("%s:%d", a.IP, s.Ports[0].Port))
		}
	}
	slice, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, e := range slice.Endpoints {
		sl = append(sl, fmt.Sprintf("%s:%d", e.Addresses[0], *slice.Ports[0].Port))
	}
	slices.Sort(eps)
	slices.Sort(sl)
	return strings.Join(eps, ",") + "|" + strings.Join(sl, ","), nil
}

func wantEndpoints(servers []*haServer) string {
	var a []string
	for _, s := range servers {
		a = append(a, s.addr+":6443")
	}
	slices.Sort(a)
	return strings.Join(a, ",") + "|" + strings.Join(a, ",")
}

// writesBy lists the managedFields entries of manager at or after since on
// the test's objects: the deployment, its replica sets and pods.
func writesBy(ctx context.Context, c kubernetes.Interface, manager string, since time.Time) ([]string, error) {
	var metas []metav1.ObjectMeta
	ds, err := c.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, d := range ds.Items {
		metas = append(metas, d.ObjectMeta)
	}
	rss, err := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, r := range rss.Items {
		metas = append(metas, r.ObjectMeta)
	}
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		metas = append(metas, p.ObjectMeta)
	}
	var out []string
	for _, m := range metas {
		for _, f := range m.ManagedFields {
			if f.Manager == manager && f.Time != nil && !f.Time.Time.Before(since) {
				out = append(out, fmt.Sprintf("%s %s %s", m.Name, f.Operation, f.Time.UTC().Format(time.RFC3339)))
			}
		}
	}
	return out, nil
}

// converged says whether deployment name has want pods, through c.
func converged(ctx context.Context, c kubernetes.Interface, name string, want int) (bool, error) {
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return false, err
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			n++
		}
	}
	if n != want {
		return false, fmt.Errorf("%d pods, want %d", n, want)
	}
	return true, nil
}

func scale(ctx context.Context, c kubernetes.Interface, name string, replicas int32) error {
	s, err := c.AppsV1().Deployments("default").GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Spec.Replicas = replicas
	_, err = c.AppsV1().Deployments("default").UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	return err
}

// TestLeaderElection runs three servers on one etcd: exactly one runs the
// controllers; a leader frozen past its lease is replaced and, resumed,
// writes nothing (its fence refuses); a leader killed is replaced and a
// Deployment scaled right after converges; the kubernetes service lists
// the live servers and drops a dead one.
func TestLeaderElection(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c := startHACluster(t, 3)
	via := c.servers[0]

	// (a) Exactly one leader, the lease's holder.
	leader, err := c.holder(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.servers {
		v, err := s.metric(ctx, "wharf_leader_is_leader")
		if err != nil {
			t.Fatal(err)
		}
		if want := s == leader; (v == 1) != want {
			t.Fatalf("server %s: wharf_leader_is_leader %v, lease holder %s", s.addr, v, leader.addr)
		}
	}
	if _, err := via.client.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "web to have 2 pods", 30*time.Second, func() (bool, error) { return converged(ctx, via.client, "web", 2) })
	rs := replicaSetOf(ctx, t, via.client, "web")
	if ms := managers(rs.ManagedFields); !slices.Contains(ms, leader.manager()) {
		t.Fatalf("replica set written by %v, want the leader's controllers %s", ms, leader.manager())
	}

	// (d) The kubernetes service lists every server.
	testserver.WaitFor(t, "default/kubernetes to list the three servers", 30*time.Second, func() (bool, error) {
		got, err := kubernetesEndpoints(ctx, via.client)
		if err != nil {
			return false, err
		}
		return got == wantEndpoints(c.servers), fmt.Errorf("endpoints %s", got)
	})

	// (c) Freeze the leader past its lease (2 s).
	others := slices.DeleteFunc(slices.Clone(c.servers), func(s *haServer) bool { return s == leader })
	frozeAt := time.Now()
	if err := syscall.Kill(leader.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			syscall.Kill(leader.cmd.Process.Pid, syscall.SIGCONT)
			resumed = true
		}
	}
	t.Cleanup(resume)
	var second *haServer
	testserver.WaitFor(t, "another server to take the lease", 30*time.Second, func() (bool, error) {
		h, err := c.holder(ctx, others[0])
		second = h
		return err == nil && h != leader, err
	})
	// Work the frozen leader's controllers would do when resumed: their
	// watches deliver these changes, their caches are behind.
	if err := scale(ctx, others[0].client, "web", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := others[0].client.AppsV1().Deployments("default").Create(ctx, deployment("api", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "web to have 4 pods by the new leader", 30*time.Second, func() (bool, error) { return converged(ctx, others[0].client, "web", 4) })
	testserver.WaitFor(t, "api to have 1 pod by the new leader", 30*time.Second, func() (bool, error) { return converged(ctx, others[0].client, "api", 1) })
	// A frozen server's lease is not renewed: it drops out of the service.
	testserver.WaitFor(t, "default/kubernetes to drop the frozen server", 30*time.Second, func() (bool, error) {
		got, err := kubernetesEndpoints(ctx, others[0].client)
		return err == nil && got == wantEndpoints(others), fmt.Errorf("endpoints %s %v", got, err)
	})
	resume()
	// The resumed server's controllers run until its elector notices; by
	// then their writes have been refused.
	testserver.WaitFor(t, "the resumed server to stop leading", 30*time.Second, func() (bool, error) {
		v, err := leader.metric(ctx, "wharf_leader_is_leader")
		return err == nil && v == 0, fmt.Errorf("is_leader %v: %v", v, err)
	})
	time.Sleep(2 * time.Second) // anything left in flight lands (or not)
	// Entries are stamped to the second: writes at or after the second
	// after the freeze would be the frozen leader's, resumed 2+ s later.
	if w, err := writesBy(ctx, via.client, leader.manager(), frozeAt.Truncate(time.Second).Add(2*time.Second)); err != nil || len(w) > 0 {
		t.Fatalf("the resumed old leader wrote after losing its lease: %v %v", w, err)
	}
	fenced, err := leader.metric(ctx, "wharf_leader_fenced_writes_total")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writes refused by the resumed server's fence: %v", fenced)
	if fenced == 0 {
		t.Fatal("the resumed old leader's fence refused nothing: its controllers did not try to act on what changed while it was frozen (no bait)")
	}
	if h, err := c.holder(ctx, via); err != nil || h != second {
		t.Fatalf("lease holder after the resume: %v %v, want %s", h, err, second.addr)
	}
	testserver.WaitFor(t, "default/kubernetes to list the resumed server again", 30*time.Second, func() (bool, error) {
		got, err := kubernetesEndpoints(ctx, via.client)
		return err == nil && got == wantEndpoints(c.servers), fmt.Errorf("endpoints %s %v", got, err)
	})

	// (b) Power-cut the current leader; scale right after: another server's
	// controllers converge it.
	survivors := slices.DeleteFunc(slices.Clone(c.servers), func(s *haServer) bool { return s == second })
	second.kill()
	if err := scale(ctx, survivors[0].client, "web", 1); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "web to scale to 1 through a survivor", 30*time.Second, func() (bool, error) { return converged(ctx, survivors[0].client, "web", 1) })
	third, err := c.holder(ctx, survivors[0])
	if err != nil || third == second {
		t.Fatalf("lease holder after the kill: %v %v", third, err)
	}
	if ms := managers(replicaSetOf(ctx, t, survivors[0].client, "web").ManagedFields); !slices.Contains(ms, third.manager()) {
		t.Fatalf("replica set written by %v, want the new leader's controllers %s", ms, third.manager())
	}
	// (d) The killed server drops out of the kubernetes service.
	testserver.WaitFor(t, "default/kubernetes to drop the killed server", 30*time.Second, func() (bool, error) {
		got, err := kubernetesEndpoints(ctx, survivors[0].client)
		return err == nil && got == wantEndpoints(survivors), fmt.Errorf("endpoints %s %v", got, err)
	})
}

func replicaSetOf(ctx context.Context, t *testing.T, c kubernetes.Interface, app string) *appsv1.ReplicaSet {
	t.Helper()
	l, err := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("replica sets of %s: %v %d", app, err, len(l.Items))
	}
	return &l.Items[0]
}

func managers(fs []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Manager)
	}
	return out
}
