//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/testserver"
)

// svc is one `wharf service` for the duration of a test.
type svc struct {
	t        *testing.T
	stateDir string
	listen   string
}

func startService(t *testing.T) *svc {
	t.Helper()
	s := newService(t)
	s.start()
	return s
}

// newService picks a state dir and port for a service, and removes
// whatever the service and its clusters leave when the test ends.
func newService(t *testing.T) *svc {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// A short state dir: containerd's sockets live deep below it, and a
	// unix socket path has at most 107 bytes.
	dir := testDir(t, "ws")
	s := &svc{t: t, stateDir: dir + "/s", listen: fmt.Sprintf("0.0.0.0:%d", port)}
	t.Cleanup(s.cleanup)
	return s
}

func (s *svc) start() {
	s.t.Helper()
	if out, err := s.wharf("service", "start", "--state-dir", s.stateDir, "--listen", s.listen); err != nil {
		s.t.Fatalf("wharf service start: %v\n%s", err, out)
	}
}

// cleanup removes whatever a test left with `wharf service stop --purge`
// (every host of every cluster, the network, the state dir), and checks
// that nothing of the service is left on the machine.
func (s *svc) cleanup() {
	if s.t.Failed() {
		s.t.Logf("--- service.log (tail)\n%s", tailFile(filepath.Join(s.stateDir, "service.log"), 80))
	}
	network, _ := local.ReadNetwork(filepath.Join(s.stateDir, "network.json"))
	if out, err := s.wharf("service", "stop", "--state-dir", s.stateDir, "--purge"); err != nil {
		s.t.Errorf("service stop --purge: %v\n%s", err, out)
	}
	if left := serviceTraces(s.stateDir, network); len(left) > 0 {
		s.t.Errorf("the purged service left: %v", left)
	}
}

// serviceTraces lists what a service left on the machine: its state dir,
// hosts' namespaces and cgroups, its bridge, nftables tables and guard
// route.
func serviceTraces(stateDir string, n local.Network) []string {
	var left []string
	if _, err := os.Stat(stateDir); err == nil {
		left = append(left, "state dir "+stateDir)
	}
	if n.Bridge != "" {
		if _, err := netlink.LinkByName(n.Bridge); err == nil {
			left = append(left, "bridge "+n.Bridge)
		}
		out, _ := exec.Command("nft", "list", "tables").Output()
		if strings.Contains(string(out), "wharf-"+n.Bridge) {
			left = append(left, "nftables tables wharf-"+n.Bridge)
		}
	}
	if p, err := netip.ParsePrefix(n.CIDR); err == nil && routes.Guarded(nil, p) {
		left = append(left, "unreachable route to "+n.CIDR)
	}
	return left
}

// template creates a cluster template on the local provider whose pods
// get no resolver: tests never hand pods the machine's.
func (s *svc) template(name string, extra ...string) {
	s.t.Helper()
	s.must(append([]string{"cluster", "template", "create", name, "--coe", "kubernetes", "--provider", "local", "--dns-nameserver", "none"}, extra...)...)
}

func (s *svc) kubeconfig() string { return filepath.Join(s.stateDir, "admin.kubeconfig") }

// wharf runs the CLI against this service.
func (s *svc) wharf(args ...string) (string, error) {
	cmd := exec.Command(wharfBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "WHARF_SERVICE_KUBECONFIG="+s.kubeconfig())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *svc) must(args ...string) string {
	s.t.Helper()
	out, err := s.wharf(args...)
	if err != nil {
		s.t.Fatalf("wharf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// field reads one field of `wharf cluster show`.
func (s *svc) field(cluster, name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("cluster", "show", cluster, "-f", "value", "-c", name))
}

// clusterKubectl returns kubectl and client-go for a cluster of the service.
func (s *svc) cluster(name string) (*testserver.KubectlRunner, kubernetes.Interface) {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, []byte(s.must("cluster", "config", name)), 0o600); err != nil {
		s.t.Fatal(err)
	}
	k := testserver.NewKubectl(s.t, "33", path)
	k.Dir = repoRoot
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, -1 // tests that load the API measure it, not client-side throttling
	return k, kubernetes.NewForConfigOrDie(cfg)
}

// hostTraces lists what a cluster's hosts leave on the machine.
func hostTraces(key string) []string {
	var left []string
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "wh-"+key) {
		left = append(left, "netns: "+string(out))
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + key); len(dirs) > 0 {
		left = append(left, fmt.Sprintf("cgroups: %v", dirs))
	}
	return left
}

// TestClusterService is the user session: a service, a template,
// a 1+2 cluster with the hello app across its hosts, resize both ways,
// delete, and nothing left behind.
func TestClusterService(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	testserver.Contains(t, s.must("cluster", "create", "demo", "--template", "k8s-local", "--master-count", "1", "--node-count", "2", "--wait"),
		"credentials", "control plane ready", "nodes ready", "CREATE_COMPLETE", "Cluster demo created in")
	testserver.Contains(t, s.must("cluster", "list"), "demo", "CREATE_COMPLETE")
	show := s.must("cluster", "show", "demo")
	network, err := local.ReadNetwork(filepath.Join(s.stateDir, "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The hosts' addresses come from the service's own network.
	hostsPrefix := strings.TrimSuffix(network.CIDR, "0/24")
	testserver.Contains(t, show, "| status ", "CREATE_COMPLETE", "| health_status ", "HEALTHY", "| api_address ", "https://"+hostsPrefix, "| node_addresses", "containerd://")
	uid := s.field("demo", "uuid")
	key := "demo-" + uid[:8]

	k, client := s.cluster("demo")
	k.Eventually(`demo-node-0\s+Ready`, "get", "nodes", "-o", "wide")
	k.Eventually(`demo-node-1\s+Ready`, "get", "nodes")
	k.Run("apply", "-f", "examples/hello/")
	k.Run("rollout", "status", "deployment/hello", "--timeout=90s")

	// Pod to pod across hosts, with the client's own address.
	ctx := testContext(t)
	byNode := helloByNode(t, ctx, client)
	if len(byNode) != 2 {
		t.Fatalf("hello pods on %d nodes, want both: %v", len(byNode), byNode)
	}
	a, b := byNode["demo-node-0"], byNode["demo-node-1"]
	answer := k.Run("exec", a.Name, "--", "wget", "-qO-", "http://"+b.Status.PodIP+":8080/")
	testserver.Contains(t, answer, `"podIP": "`+b.Status.PodIP+`"`, `"remoteAddr": "`+a.Status.PodIP+":")

	// client-go's in-cluster config from a pod of each host: the
	// kubernetes service reaches the master, the pod's projected token
	// authenticates it, RBAC refuses (the default account may do nothing).
	for _, p := range []corev1.Pod{a, b} {
		out, _ := k.Cmd("", "exec", p.Name, "--", "/testapp", "list-pods").CombinedOutput()
		testserver.Contains(t, string(out), `pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods"`)
	}

	// The service by name from each host: its DNS and proxy reach the
	// pods of both hosts, with the client's own address.
	for _, from := range []corev1.Pod{a, b} {
		out := k.Run("exec", from.Name, "--", "sh", "-c", "for i in $(seq 30); do timeout 5 wget -qO- http://hello/; done")
		for _, to := range []corev1.Pod{a, b} {
			testserver.Contains(t, out, `"podIP": "`+to.Status.PodIP+`"`)
		}
		testserver.Contains(t, out, `"remoteAddr": "`+from.Status.PodIP+":")
	}

	// NodePort: every node answers on its address, called from this
	// machine's namespace as a user outside the cluster would.
	k.Run("expose", "deployment/hello", "--name", "hello-np", "--type", "NodePort", "--port", "80", "--target-port", "8080")
	nodePort := k.Run("get", "svc", "hello-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
	for _, p := range []corev1.Pod{a, b} {
		testserver.Contains(t, httpGet(t, "http://"+net.JoinHostPort(p.Status.HostIP, nodePort)+"/"), `"podIP": "`)
	}
	// externalTrafficPolicy Local: each node sends to its own pods, and
	// they see the client's own address.
	k.Run("patch", "svc", "hello-np", "-p", `{"spec":{"externalTrafficPolicy":"Local"}}`)
	hello, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []corev1.Pod{a, b} {
		addr := net.JoinHostPort(p.Status.HostIP, nodePort)
		probe, err := net.Dial("udp", addr) // sends nothing: the source address the kernel picks
		if err != nil {
			t.Fatal(err)
		}
		src := probe.LocalAddr().(*net.UDPAddr).IP.String()
		probe.Close()
		testserver.WaitFor(t, "only "+p.Spec.NodeName+"'s pods answering at "+addr+", seeing "+src, 10*time.Second, func() (bool, error) {
			for range 10 {
				answer, err := getOnce("http://" + addr + "/")
				if err != nil || !strings.Contains(answer, `"remoteAddr": "`+src+":") {
					return false, fmt.Errorf("%q: %v", answer, err)
				}
				for _, q := range hello.Items {
					if q.Spec.NodeName != p.Spec.NodeName && strings.Contains(answer, `"podIP": "`+q.Status.PodIP+`"`) {
						return false, fmt.Errorf("answered by %s on %s", q.Name, q.Spec.NodeName)
					}
				}
			}
			return true, nil
		})
	}

	// LoadBalancer: an address of the cluster's block of the provider
	// network's pool, answering from this machine, listed by cluster show.
	k.Run("expose", "deployment/hello", "--name", "hello-lb", "--type", "LoadBalancer", "--port", "80", "--target-port", "8080")
	lbIP := strings.TrimSpace(k.Eventually(`^\d+\.\d+\.\d+\.\d+$`, "get", "svc", "hello-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
	block := s.field("demo", "lb_cidr")
	if p, err := netip.ParsePrefix(block); err != nil || !p.Contains(netip.MustParseAddr(lbIP)) {
		t.Errorf("load balancer address %s, cluster's block %q", lbIP, block)
	}
	seen := map[string]bool{}
	for range 30 {
		answer := httpGet(t, "http://"+lbIP+"/")
		for _, p := range []corev1.Pod{a, b} {
			if strings.Contains(answer, `"podIP": "`+p.Status.PodIP+`"`) {
				seen[p.Spec.NodeName] = true
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("30 calls to %s answered by pods of %v, want both nodes'", lbIP, seen)
	}
	testserver.WaitFor(t, "cluster show listing the load balancer", 20*time.Second, func() (bool, error) {
		out := s.must("cluster", "show", "demo")
		return strings.Contains(out, "default/hello-lb "+lbIP+" 80/TCP"), errors.New(out)
	})

	// Ingress: every node serves examples/ingress on its ports 80 and 443.
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir, "e2e ingress CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServing(dir, "hello", []string{"hello.example.test"}); err != nil {
		t.Fatal(err)
	}
	k.Run("create", "secret", "tls", "hello-tls", "--cert", filepath.Join(dir, "hello.crt"), "--key", filepath.Join(dir, "hello.key"))
	k.Run("apply", "-f", "examples/ingress/")
	k.Run("rollout", "status", "deployment/api", "--timeout=90s")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, p := range []corev1.Pod{a, b} {
		hc := ingressClient(pool, p.Status.HostIP+":80", p.Status.HostIP+":443")
		for _, url := range []string{"http://hello.example.test/api", "https://hello.example.test/api"} {
			testserver.WaitFor(t, url+" through "+p.Spec.NodeName, 30*time.Second, func() (bool, error) {
				answer, code, err := getApp(hc, url)
				return err == nil && code == 200 && answer.Message == "api", fmt.Errorf("%d %+v %v", code, answer, err)
			})
		}
	}

	// The ingress load balancer: an address of the cluster's block whose
	// traffic goes to the agents' proxies; the Ingress's status shows it.
	ingressIP := strings.TrimSpace(k.Eventually(`^\d+\.\d+\.\d+\.\d+$`, "-n", "kube-system", "get", "svc", "wharf-ingress", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
	k.Eventually(`hello\s+\S+\s+hello.example.test\s+`+regexp.QuoteMeta(ingressIP)+`\s`, "get", "ingress", "hello")
	viaLB := ingressClient(pool, ingressIP+":80", ingressIP+":443")
	for _, url := range []string{"http://hello.example.test/", "https://hello.example.test/api"} {
		testserver.WaitFor(t, url+" through the ingress load balancer "+ingressIP, 30*time.Second, func() (bool, error) {
			answer, code, err := getApp(viaLB, url)
			return err == nil && code == 200, fmt.Errorf("%d %+v %v", code, answer, err)
		})
	}

	// A DaemonSet follows the resize: the new hosts get its pod, the
	// removed one takes its pod away. A budget on hello lets the drain
	// evict one of its pods at a time.
	k.RunIn(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: agent, image: registry.wharf.local/wharf/busybox:v1, command: [sleep, "3600"]}]
`, "apply", "-f", "-")
	k.Run("rollout", "status", "daemonset/node-agent", "--timeout=90s")
	k.Run("create", "poddisruptionbudget", "hello", "--selector", "app=hello", "--max-unavailable", "1")

	// Resize up, then down naming the host to remove.
	s.must("cluster", "resize", "demo", "4", "--wait")
	k.Eventually(`demo-node-3\s+Ready`, "get", "nodes")
	k.Eventually(`^4 4$`, "get", "daemonset", "node-agent", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.numberAvailable}")
	// How long each new node waited for its pod: node Ready to pod started.
	for _, n := range []string{"demo-node-2", "demo-node-3"} {
		ready := k.Run("get", "node", n, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].lastTransitionTime}`)
		started := k.Run("get", "pods", "-l", "app=node-agent", "--field-selector", "spec.nodeName="+n, "-o", "jsonpath={.items[0].status.containerStatuses[0].state.running.startedAt}")
		t.Logf("DaemonSet pod on %s: node Ready at %s, container started at %s", n, ready, started)
	}
	s.must("cluster", "resize", "demo", "2", "--nodes-to-remove", "demo-node-1", "--wait")
	k.Eventually(`^2 2$`, "get", "daemonset", "node-agent", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.numberAvailable}")
	nodes := k.Run("get", "nodes")
	if strings.Contains(nodes, "demo-node-1") || strings.Count(nodes, " Ready") != 2 {
		t.Errorf("after resize to 2 without demo-node-1:\n%s", nodes)
	}
	k.Run("rollout", "status", "deployment/hello", "--timeout=90s")
	k.Eventually(`(?s)(Running.*){3}`, "get", "pods", "-l", "app=hello")
	// The removed host's endpoints are gone: every call through the
	// service is answered.
	first := strings.Fields(k.Run("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[*].metadata.name}"))[0]
	out := k.Run("exec", first, "--", "sh", "-c", "for i in $(seq 20); do timeout 5 wget -qO- http://hello/ >/dev/null && echo answered; done")
	if n := strings.Count(out, "answered"); n != 20 {
		t.Errorf("%d of 20 calls to the service answered after the resize:\n%s", n, out)
	}

	testserver.Contains(t, s.must("cluster", "delete", "demo", "--wait"), "Cluster demo deleted")
	if left := hostTraces(key); len(left) > 0 {
		t.Errorf("the deleted cluster left: %v", left)
	}
	if hosts, _ := filepath.Glob(filepath.Join(s.stateDir, "hosts", "*", "host.json")); len(hosts) > 0 {
		t.Errorf("host records left: %v", hosts)
	}
}

// helloByNode returns a hello pod of each node that runs one.
func helloByNode(t *testing.T, ctx context.Context, client kubernetes.Interface) map[string]corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		byNode[p.Spec.NodeName] = p
	}
	return byNode
}

// TestClusterServiceBadInput: each bad request is refused with a clear
// error and stores no cluster; a create that fails half-way says why and
// delete still cleans up.
func TestClusterServiceBadInput(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	if out, err := s.wharf("cluster", "template", "create", "swarm", "--coe", "swarm", "--provider", "local"); err == nil || !strings.Contains(out, "kubernetes") {
		t.Errorf("coe swarm: %v\n%s", err, out)
	}
	cases := []struct {
		name, want string
		args       []string
	}{
		{"unknown template", "nope", []string{"cluster", "create", "c1", "--template", "nope"}},
		{"two masters", "master", []string{"cluster", "create", "c2", "--template", "k8s-local", "--master-count", "2"}},
		{"negative nodes", "node", []string{"cluster", "create", "c3", "--template", "k8s-local", "--node-count", "-1"}},
		{"not a DNS label", "name", []string{"cluster", "create", "Bad_Name", "--template", "k8s-local"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.wharf(tc.args...)
			if err == nil || !strings.Contains(strings.ToLower(out), tc.want) {
				t.Errorf("%v: %v\n%s", tc.args, err, out)
			}
		})
	}
	if out := s.must("cluster", "list", "-f", "value", "-c", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("clusters stored after refused requests: %q", out)
	}

	// Hosts with too little memory to start their wharf process: the
	// kernel kills it at once, and the create fails with that reason at
	// once, not at its timeout.
	s.template("tiny", "--memory", "8Mi")
	s.must("cluster", "create", "broken", "--template", "tiny", "--node-count", "1", "--timeout", "5m")
	testserver.WaitFor(t, "CREATE_FAILED", 90*time.Second, func() (bool, error) {
		return s.field("broken", "status") == "CREATE_FAILED", nil
	})
	reason := s.field("broken", "status_reason")
	if !strings.Contains(reason, "OOM killer") || strings.Contains(reason, "timed out") {
		t.Errorf("status_reason %q: want the OOM kill named, not a timeout", reason)
	}
	testserver.Contains(t, s.must("cluster", "show", "broken", "-f", "value", "-c", "faults"), "broken-master-0", "OOM killer")
	key := "broken-" + s.field("broken", "uuid")[:8]
	s.must("cluster", "delete", "broken", "--wait")
	if left := hostTraces(key); len(left) > 0 {
		t.Errorf("the failed cluster left: %v", left)
	}

	// Hosts too slow to start (1% of a CPU): the create waits, and only
	// slowness waits for the timeout; meanwhile the cluster cannot be
	// deleted, nor another made under its name.
	s.template("slow", "--cpu", "10m")
	s.must("cluster", "create", "slow", "--template", "slow", "--node-count", "1", "--timeout", "15s")
	if out, err := s.wharf("cluster", "create", "slow", "--template", "slow"); err == nil || !strings.Contains(out, "exists") {
		t.Errorf("duplicate name: %v\n%s", err, out)
	}
	if out, err := s.wharf("cluster", "delete", "slow"); err == nil || !strings.Contains(out, "being created") {
		t.Errorf("delete while creating: %v\n%s", err, out)
	}
	testserver.WaitFor(t, "CREATE_FAILED", 90*time.Second, func() (bool, error) {
		return s.field("slow", "status") == "CREATE_FAILED", nil
	})
	if reason := s.field("slow", "status_reason"); !strings.Contains(reason, "timed out") {
		t.Errorf("status_reason %q: want a timeout", reason)
	}
	s.must("cluster", "delete", "slow", "--wait")
}

// TestServiceKilledDuringCreate: kill -9 of the service mid-create; the
// restarted service finishes the create; the clusters' hosts never stopped.
func TestServiceKilledDuringCreate(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "crash", "--template", "k8s-local", "--node-count", "3")
	testserver.WaitFor(t, "a host made", 30*time.Second, func() (bool, error) {
		hosts, _ := filepath.Glob(filepath.Join(s.stateDir, "hosts", "*", "host.json"))
		return len(hosts) > 0, nil
	})
	pid, err := readPid(filepath.Join(s.stateDir, "service.pid"))
	if err != nil {
		t.Fatal(err)
	}
	killPidFileProcess(t, pid)
	s.start()
	out := s.must("cluster", "create", "--help") // the service answers again
	_ = out
	testserver.WaitFor(t, "CREATE_COMPLETE after the restart", 90*time.Second, func() (bool, error) {
		st := s.field("crash", "status")
		if st == "CREATE_FAILED" {
			return false, fmt.Errorf("failed: %s", s.field("crash", "status_reason"))
		}
		return st == "CREATE_COMPLETE", nil
	})
	k, _ := s.cluster("crash")
	out = k.Eventually(`(?s)(crash-node-\d\s+Ready.*){3}`, "get", "nodes")
	t.Logf("%s", out)
	s.must("cluster", "delete", "crash", "--wait")
}

// TestPowerCutAndAutoHealing: on a 1+3 cluster a client pod reaches the
// service's backends on other hosts; then a worker host loses power: its
// node goes NotReady, its pods run on the other nodes, its endpoints drop
// out of the service, and the service replaces the host.
func TestPowerCutAndAutoHealing(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "heal", "--template", "k8s-local", "--node-count", "3", "--labels", "auto_healing_enabled=true", "--wait")
	k, client := s.cluster("heal")
	for _, n := range []string{"heal-node-0", "heal-node-1", "heal-node-2"} {
		k.Eventually(n+`\s+Ready`, "get", "nodes")
	}
	k.Run("apply", "-f", "examples/hello/")
	k.Run("rollout", "status", "deployment/hello", "--timeout=90s")
	ctx := testContext(t)
	victim := "heal-node-1"

	// 1+3: a client on a host of its own (one without hello pods when
	// there is one) reaches, by the service's name, every backend: those
	// on the other hosts.
	hello, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]bool{}
	for _, p := range hello.Items {
		on[p.Spec.NodeName] = true
	}
	// A host without hello pods; when each has some, any host has
	// backends on the two others.
	host := "heal-node-0"
	for _, n := range []string{"heal-node-0", "heal-node-1", "heal-node-2"} {
		if !on[n] {
			host = n
			break
		}
	}
	k.Run("run", "probe", "--image", "registry.wharf.local/wharf/busybox:v1", "--restart", "Never",
		"--overrides", `{"spec":{"nodeName":"`+host+`"}}`, "--", "sleep", "3600")
	k.Run("wait", "--for=condition=Ready", "pod/probe", "--timeout=60s")
	out := k.Run("exec", "probe", "--", "sh", "-c", "for i in $(seq 40); do timeout 5 wget -qO- http://hello/; done")
	for _, p := range hello.Items {
		if !strings.Contains(out, `"podIP": "`+p.Status.PodIP+`"`) {
			t.Errorf("40 calls from %s through the hello service: none answered by %s on %s", host, p.Name, p.Spec.NodeName)
		}
	}
	k.Run("delete", "pod", "probe", "--now")

	// A load balancer address, held by one host: that host is the one
	// whose power is cut.
	k.Run("expose", "deployment/hello", "--name", "hello-lb", "--type", "LoadBalancer", "--port", "80", "--target-port", "8080")
	lbIP := strings.TrimSpace(k.Eventually(`^\d+\.\d+\.\d+\.\d+$`, "get", "svc", "hello-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
	testserver.Contains(t, httpGet(t, "http://"+lbIP+"/"), `"podIP": "`)
	key := "heal-" + s.field("heal", "uuid")[:8]
	holders := func() []string {
		var on []string
		for _, n := range []string{"heal-node-0", "heal-node-1", "heal-node-2"} {
			out, _ := exec.Command("ip", "-n", "wh-"+key+"-"+n, "-br", "addr").CombinedOutput()
			if strings.Contains(string(out), " "+lbIP+"/32") {
				on = append(on, n)
			}
		}
		return on
	}
	if h := holders(); len(h) != 1 {
		t.Fatalf("load balancer address %s held by %v, want one host", lbIP, h)
	} else {
		victim = h[0]
	}

	lp, err := local.New(local.Config{StateDir: filepath.Join(s.stateDir, "hosts")})
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cut bool
	for _, h := range hosts {
		if h.Name == victim {
			if err := lp.PowerOff(ctx, h.Cluster, h.Name); err != nil {
				t.Fatal(err)
			}
			cut = true
		}
	}
	if !cut {
		t.Fatalf("no host %s among %v", victim, hosts)
	}
	// Failover: another host takes the address and announces it.
	cutAt := time.Now()
	fast := &http.Client{Timeout: 250 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	testserver.WaitFor(t, "the load balancer address answering again", 30*time.Second, func() (bool, error) {
		resp, err := fast.Get("http://" + lbIP + "/")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return true, nil
	})
	t.Logf("load balancer failover after a power cut: %s answering again after %s, held by %v",
		lbIP, time.Since(cutAt).Round(time.Millisecond), holders())
	k.Eventually(victim+`\s+NotReady`, "get", "nodes")
	testserver.WaitFor(t, "3 hello pods running, none on the dead node", 90*time.Second, func() (bool, error) {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != victim {
				n++
			}
		}
		return n == 3, fmt.Errorf("%d running", n)
	})
	// The dead host's endpoints are gone with its pods: every call
	// through the service is answered.
	testserver.WaitFor(t, "20 of 20 calls through the hello service answered", 60*time.Second, func() (bool, error) {
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == victim {
				continue
			}
			out, err := k.Cmd("", "exec", p.Name, "--", "sh", "-c", "for i in $(seq 20); do timeout 3 wget -qO- http://hello/ >/dev/null && echo answered; done").CombinedOutput()
			n := strings.Count(string(out), "answered")
			return n == 20, fmt.Errorf("%d of 20 answered: %v", n, err)
		}
		return false, errors.New("no live hello pod")
	})
	// Auto-healing: the service replaces the host; the node comes back.
	k.Eventually(victim+`\s+Ready`, "get", "nodes")
	testserver.WaitFor(t, "HEALTHY again", 90*time.Second, func() (bool, error) {
		return s.field("heal", "health_status") == "HEALTHY", nil
	})
	s.must("cluster", "delete", "heal", "--wait")
}

// killPidFileProcess SIGKILLs a process and waits until it is gone.
func killPidFileProcess(t *testing.T, pid int) {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	testserver.WaitFor(t, "the service gone", 10*time.Second, func() (bool, error) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(data), ") Z "), nil
	})
}

// TestDemo runs `make demo`'s script twice against a service of its own:
// the first run makes the service, a 1+2 cluster and the hello app, and a
// pod answers a pod on the other host; the second reuses all of it.
func TestDemo(t *testing.T) {
	s := newService(t)
	demo := func() string {
		t.Helper()
		cmd := exec.Command("hack/demo.sh")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "WHARF_BIN="+wharfBin,
			"WHARF_SERVICE_STATE_DIR="+s.stateDir, "WHARF_SERVICE_LISTEN="+s.listen, "WHARF_DNS_NAMESERVER=none")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hack/demo.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	out := demo()
	testserver.Contains(t, out, "| status ", "CREATE_COMPLETE", `"message": "Hello from Wharf!"`)
	hop := regexp.MustCompile(`\((\S+) -> (\S+), pod to pod across hosts\)`).FindStringSubmatch(out)
	podIP := regexp.MustCompile(`"podIP": "([0-9.]+)"`).FindStringSubmatch(out)
	remote := regexp.MustCompile(`"remoteAddr": "([0-9.]+):`).FindStringSubmatch(out)
	if hop == nil || hop[1] == hop[2] || podIP == nil || remote == nil || podIP[1] == remote[1] {
		t.Errorf("no answer from a pod on another host, with the asking pod's address:\n%s", out)
	}
	testserver.Contains(t, demo(), "already running", "cluster demo exists: reusing it", "CREATE_COMPLETE", "Hello from Wharf!")
}
