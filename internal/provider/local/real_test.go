package local

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/provider"
)

// TestRealCluster runs the real wharf on local hosts: a server on a
// master, agents on two workers, as the cluster controller would (see
// docs/service.md), and checks that the nodes get Ready and each worker
// routes to the other's pod CIDR; with WHARF_IMAGES (e.g. bin/images)
// it also pushes the images and has a pod on one worker call a pod on the
// other. WHARF_BINARY names the wharf to run (e.g. bin/wharf); without it
// the test is skipped.
func TestRealCluster(t *testing.T) {
	bin := os.Getenv("WHARF_BINARY")
	if bin == "" {
		t.Skip("WHARF_BINARY is not set")
	}
	cfg := testConfig(t)
	cfg.Binary = bin
	p := newTestProvider(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := provider.ClusterRef{Namespace: "t", Name: "real", UID: "00112233445566778899"}
	create := func(spec provider.HostSpec) provider.Host {
		t.Helper()
		spec.Cluster = c
		t.Cleanup(func() {
			if t.Failed() {
				log, _ := os.ReadFile(filepath.Join(p.namesFor(c, spec.Name).dir, logFile))
				t.Logf("%s's log:\n%s", spec.Name, log[max(0, len(log)-4000):])
			}
			if err := p.DeleteHost(context.Background(), c, spec.Name); err != nil {
				t.Errorf("DeleteHost %s: %v", spec.Name, err)
			}
			checkGone(t, p, provider.Host{Cluster: c, Name: spec.Name})
		})
		h, err := p.CreateHost(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	master := create(provider.HostSpec{Name: "real-master-0", Role: provider.RoleMaster, Args: []string{
		"server", "--data-dir", "$(STATE_DIR)/server", "--listen", "0.0.0.0:6443", // its loopback client dials 127.0.0.1
		"--advertise-address", "$(HOST_IP)", "--cluster-cidr", "10.244.0.0/16", "--unsafe-no-fsync",
	}})
	token := strings.TrimSpace(string(waitFile(t, ctx, filepath.Join(master.StateDir, "server", "join-token"))))
	kubeconfig := filepath.Join(master.StateDir, "server", "admin.kubeconfig")
	waitFile(t, ctx, kubeconfig)

	var workers []provider.Host
	for _, name := range []string{"real-node-0", "real-node-1"} {
		workers = append(workers, create(provider.HostSpec{Name: name, Role: provider.RoleWorker, CPU: "1", Memory: "512Mi", Args: []string{
			"agent", "--server", "https://" + master.Address + ":6443", "--token", token,
			"--state-dir", "$(STATE_DIR)/agent", "--node-name", name, "--node-ip", "$(HOST_IP)",
			"--cgroup-root", p.namesFor(c, name).cgroupRoot, "--cluster-cidr", "10.244.0.0/16",
		}}))
	}

	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	podCIDR := map[string]string{}
	for len(podCIDR) < len(workers) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		for _, n := range nodesOrNone(nodes, err) {
			if n.Spec.PodCIDR != "" && ready(n) {
				podCIDR[n.Name] = n.Spec.PodCIDR
			}
		}
		sleepOrFail(t, ctx, "nodes Ready with pod CIDRs: have %v (%v)", podCIDR, err)
	}
	t.Logf("nodes ready: %v", podCIDR)

	// Each worker routes to the other's pods, via the other's address.
	for i, w := range workers {
		other := workers[1-i]
		want := podCIDR[other.Name] + " via " + other.Address
		for !slices.Contains(hostRoutes(t, p, w), want) {
			sleepOrFail(t, ctx, "%s: routes %v, want %q", w.Name, hostRoutes(t, p, w), want)
		}
	}

	imagesDir := os.Getenv("WHARF_IMAGES")
	if imagesDir == "" {
		t.Log("WHARF_IMAGES is not set: no pods across hosts")
		return
	}
	tars, _ := filepath.Glob(filepath.Join(imagesDir, "*.tar"))
	if out, err := exec.CommandContext(ctx, bin, append([]string{"image", "push", "--kubeconfig", kubeconfig}, tars...)...).CombinedOutput(); err != nil {
		t.Fatalf("image push: %v: %s", err, out)
	}
	srv := runPod(t, ctx, client, "srv", workers[0].Name, corev1.PodRunning, nil)
	cli := runPod(t, ctx, client, "cli", workers[1].Name, corev1.PodSucceeded,
		[]string{"client", "--count", "1", "--url", "http://" + srv.Status.PodIP + ":8080/"})
	logs, err := client.CoreV1().Pods("default").GetLogs("cli", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The server sees the client pod's own address: no masquerading
	// between the hosts' pods.
	var answer struct{ RemoteAddr string }
	_, body, _ := strings.Cut(string(logs), " ") // "200 {...}"
	if err := json.Unmarshal([]byte(body), &answer); err != nil || !strings.HasPrefix(answer.RemoteAddr, cli.Status.PodIP+":") {
		t.Errorf("pod %s on %s asked %s on %s and got %s", cli.Status.PodIP, workers[1].Name, srv.Status.PodIP, workers[0].Name, logs)
	}
	t.Logf("pod %s on %s reached pod %s on %s, which saw %s", cli.Status.PodIP, workers[1].Name, srv.Status.PodIP, workers[0].Name, answer.RemoteAddr)
}

// runPod runs testapp with args on a node and waits for phase.
func runPod(t *testing.T, ctx context.Context, client kubernetes.Interface, name, node string, phase corev1.PodPhase, args []string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "app", Image: images.Ref("testapp"), Args: args,
		}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == phase && got.Status.PodIP != "" {
			return got
		}
		if err == nil && got.Status.Phase == corev1.PodFailed {
			t.Fatalf("pod %s failed: %+v", name, got.Status)
		}
		sleepOrFail(t, ctx, "pod %s: want phase %s (%v)", name, phase, err)
	}
}

func ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodesOrNone(l *corev1.NodeList, err error) []corev1.Node {
	if err != nil {
		return nil
	}
	return l.Items
}

// hostRoutes returns the routes of the routes package in a host's netns.
func hostRoutes(t *testing.T, p *Provider, h provider.Host) []string {
	ns, err := netns.GetFromPath(p.namesFor(h.Cluster, h.Name).netnsPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	rs, err := nh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: routes.Protocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Dst.String()+" via "+r.Gw.String())
	}
	return out
}

func waitFile(t *testing.T, ctx context.Context, path string) []byte {
	for {
		data, err := os.ReadFile(path)
		if err == nil && len(data) > 0 {
			return data
		}
		sleepOrFail(t, ctx, "waiting for %s: %v", path, err)
	}
}

// sleepOrFail waits a little, or fails the test with the message once
// its time is up.
func sleepOrFail(t *testing.T, ctx context.Context, format string, args ...any) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf(format, args...)
	case <-time.After(100 * time.Millisecond):
	}
}
