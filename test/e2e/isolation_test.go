//go:build e2e

package e2e

import (
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/testserver"
)

// TestTwoServicesSideBySide: a second service's whole session (create,
// resize, delete, purge) runs beside a first service's cluster, which
// stays HEALTHY and answers kubectl throughout. The two never share a
// network or bridge, and the pods of one cluster reach no host of the
// other, nor any port of the other service.
func TestTwoServicesSideBySide(t *testing.T) {
	a := startService(t)
	a.template("k8s-local")
	a.must("cluster", "create", "a", "--template", "k8s-local", "--node-count", "1", "--wait")
	ka, clientA := a.cluster("a")
	ka.Run("apply", "-f", "examples/hello/")
	ka.Run("rollout", "status", "deployment/hello", "--timeout=90s")

	b := newService(t)
	b.start()
	netA, err := local.ReadNetwork(filepath.Join(a.stateDir, "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	netB, err := local.ReadNetwork(filepath.Join(b.stateDir, "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	if netA.CIDR == netB.CIDR || netA.Bridge == netB.Bridge {
		t.Fatalf("two services share a network or bridge: %+v, %+v", netA, netB)
	}
	// Asking for the first service's network is refused, naming it.
	c := newService(t)
	if out, err := c.wharf("service", "start", "--state-dir", c.stateDir, "--listen", c.listen, "--provider-network", netA.CIDR); err == nil || !strings.Contains(out, a.stateDir) {
		t.Errorf("a service on %s, in use by %s: %v\n%s", netA.CIDR, a.stateDir, err, out)
	}

	b.template("k8s-local")
	b.must("cluster", "create", "b", "--template", "k8s-local", "--node-count", "1", "--wait")
	kb, _ := b.cluster("b")
	probeB := startProbe(t, kb)

	// From a pod of b: a's master (its API), a's worker (its agent) and
	// a's service port are all out of reach; b's own API is not.
	ctx := testContext(t)
	pods, err := clientA.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("hello pods of a: %v", err)
	}
	apiA, _ := url.Parse(a.field("a", "api_address"))
	_, portA, _ := net.SplitHostPort(a.listen)
	serviceA := netip.MustParsePrefix(netA.CIDR).Addr().Next().String()
	// (Pod addresses are private to each cluster, as Magnum's networks
	// are: every cluster may use 10.244.0.0/16, so they name nothing
	// outside it.)
	ofA := [][2]string{
		{apiA.Hostname(), apiA.Port()},         // a's master: its API
		{pods.Items[0].Status.HostIP, "10250"}, // a's worker: its agent
	}
	for _, target := range append(ofA, [2]string{serviceA, portA}) { // and a's service: API and registry
		if probeB.reaches(target[0], target[1]) {
			t.Errorf("a pod of cluster b reached %s:%s of the other service", target[0], target[1])
		}
	}
	// What the check looks for does answer when allowed: b's own API.
	apiB, _ := url.Parse(b.field("b", "api_address"))
	if !probeB.reaches(apiB.Hostname(), apiB.Port()) {
		t.Errorf("a pod of cluster b cannot reach its own API at %s", apiB.Host)
	}

	// Two clusters of one service are apart too: from a pod of a2, a's
	// hosts are out of reach; a2's API and a's service port (its registry,
	// which every node pulls from) are not.
	a.must("cluster", "create", "a2", "--template", "k8s-local", "--node-count", "1", "--wait")
	ka2, _ := a.cluster("a2")
	probeA2 := startProbe(t, ka2)
	for _, target := range ofA {
		if probeA2.reaches(target[0], target[1]) {
			t.Errorf("a pod of cluster a2 reached %s:%s of cluster a", target[0], target[1])
		}
	}
	apiA2, _ := url.Parse(a.field("a2", "api_address"))
	for _, target := range [][2]string{{apiA2.Hostname(), apiA2.Port()}, {serviceA, portA}} {
		if !probeA2.reaches(target[0], target[1]) {
			t.Errorf("a pod of cluster a2 cannot reach %s:%s", target[0], target[1])
		}
	}
	a.must("cluster", "delete", "a2", "--wait")

	b.must("cluster", "resize", "b", "2", "--wait")
	kb.Eventually(`b-node-1\s+Ready`, "get", "nodes")
	b.must("cluster", "delete", "b", "--wait")
	if out, err := b.wharf("service", "stop", "--state-dir", b.stateDir, "--purge"); err != nil {
		t.Fatalf("purge of the second service: %v\n%s", err, out)
	}
	if left := serviceTraces(b.stateDir, netB); len(left) > 0 {
		t.Errorf("the second service left: %v", left)
	}

	// The first service's cluster never noticed.
	testserver.WaitFor(t, "cluster a HEALTHY", 30*time.Second, func() (bool, error) {
		return a.field("a", "health_status") == "HEALTHY", nil
	})
	ka.Eventually(`a-node-0\s+Ready`, "get", "nodes")
	running := 0
	pods, err = clientA.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if running == 0 {
		t.Errorf("no hello pod of cluster a running after the other service's session")
	}
	// Its service still answers by name: the nodes' DNS and proxies too.
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			testserver.Contains(t, ka.Run("exec", p.Name, "--", "timeout", "10", "wget", "-qO-", "http://hello/"), "Hello from Wharf!")
			break
		}
	}
}

// probe is a busybox pod to test reachability from.
type probe struct {
	t *testing.T
	k *testserver.KubectlRunner
}

func startProbe(t *testing.T, k *testserver.KubectlRunner) *probe {
	t.Helper()
	k.Run("run", "probe", "--image", "registry.wharf.local/wharf/busybox:v1", "--restart", "Never", "--", "sleep", "3600")
	k.Run("wait", "--for=condition=Ready", "pod/probe", "--timeout=90s")
	return &probe{t: t, k: k}
}

// reaches says whether the probe opens a TCP connection to host:port.
func (p *probe) reaches(host, port string) bool {
	out, err := p.k.Cmd("", "exec", "probe", "--", "nc", "-w", "3", host, port, "-e", "/bin/true").CombinedOutput()
	p.t.Logf("probe -> %s:%s: %v %s", host, port, err, out)
	return err == nil
}

// TestTwoUpClustersSideBySide: two `wharf up` state dirs on one machine
// choose their own ranges, bridges, ports and cgroups; both serve pods;
// purging one leaves the other working.
func TestTwoUpClustersSideBySide(t *testing.T) {
	one, two := upCluster(t), upCluster(t)
	type chosen struct{ Listen, AgentListen, ClusterCIDR, ServiceCIDR, Bridge, CgroupRoot string }
	read := func(c *cluster) chosen {
		var ch chosen
		data, err := os.ReadFile(filepath.Join(c.stateDir, "cluster.json"))
		if err == nil {
			err = json.Unmarshal(data, &ch)
		}
		if err != nil {
			t.Fatalf("cluster.json: %v", err)
		}
		return ch
	}
	a, b := read(one), read(two)
	for _, pair := range [][3]string{
		{"server address", a.Listen, b.Listen}, {"agent address", a.AgentListen, b.AgentListen},
		{"bridge", a.Bridge, b.Bridge}, {"cgroup", a.CgroupRoot, b.CgroupRoot},
	} {
		if pair[1] == pair[2] {
			t.Errorf("two wharf up share a %s: %s", pair[0], pair[1])
		}
	}
	for _, x := range []string{a.ClusterCIDR, a.ServiceCIDR} {
		for _, y := range []string{b.ClusterCIDR, b.ServiceCIDR} {
			if netip.MustParsePrefix(x).Overlaps(netip.MustParsePrefix(y)) {
				t.Errorf("two wharf up share addresses: %s and %s", x, y)
			}
		}
	}
	// Each serves its pods, on its own bridge.
	ask := func(c *cluster) string {
		t.Helper()
		c.Run("apply", "-f", "examples/hello/")
		c.Run("rollout", "status", "deployment/hello", "--timeout=90s")
		ip := strings.TrimSpace(c.Run("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[0].status.podIP}"))
		testserver.Contains(t, httpGet(t, "http://"+ip+":8080/"), `"podIP": "`+ip+`"`)
		return ip
	}
	ipOne := ask(one)
	ask(two)
	if out, err := two.wharf("down", "--state-dir", two.stateDir, "--purge"); err != nil {
		t.Fatalf("wharf down --purge of the second: %v\n%s", err, out)
	}
	one.Eventually(`e2e\s+Ready`, "get", "nodes")
	testserver.Contains(t, httpGet(t, "http://"+ipOne+":8080/"), `"podIP": "`+ipOne+`"`)
}
