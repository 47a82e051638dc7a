package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/provider"
)

// TestCluster boots a real cluster over ssh: a wharf server on one
// machine, an agent on another, a pod on the agent's node pulled from the
// server's registry; then deletes the hosts and checks that nothing of
// them is left (processes, mounts, shim sockets, CNI results, cgroups,
// files, records).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a cluster")
	}
	needLab(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("needs containerd (hack/install-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, imageFiles := buildWharf(t, ctx)
	l := newLab(t, 2)

	// What the cluster controller gives hosts (docs/service.md).
	caDir := t.TempDir()
	ca, err := pki.EnsureCA(caDir, "wharf-ca")
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(caDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	admin, join := randHex(16), randHex(16)
	tokens, _ := json.Marshal(map[string]string{"admin": admin, "join": join})
	joinToken := "wharf1." + strings.TrimPrefix(ca.Hash(), "sha256:") + "." + join
	c := provider.ClusterRef{Namespace: "default", Name: "demo", UID: randHex(8)}

	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(l.baseDir, "*", "*", "wharf.log"))
			for _, f := range logs {
				data, _ := os.ReadFile(f)
				if len(data) > 6000 {
					data = data[len(data)-6000:]
				}
				t.Logf("%s:\n%s", f, data)
			}
		}
	})
	cfg := l.config(t, t.TempDir(), bin)
	cfg.KnownHosts = nil // pinned on first use
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	start := time.Now()
	master, err := p.CreateHost(ctx, provider.HostSpec{
		Cluster: c, Name: "demo-master-0", Role: provider.RoleMaster,
		Files: map[string][]byte{"server/pki/ca.crt": ca.CertPEM, "server/pki/ca.key": caKey, "server/tokens.json": tokens},
		Args:  []string{"server", "--data-dir", "$(STATE_DIR)/server", "--listen", "$(HOST_IP):6443", "--advertise-address", "$(HOST_IP)", "--unsafe-no-fsync"},
	})
	if err != nil {
		t.Fatalf("master: %v", err)
	}
	t.Logf("master host created in %v (binary copied)", time.Since(start).Round(time.Millisecond))
	apiURL := "https://" + master.Address + ":6443"
	cs, kubeconfig := clients(t, apiURL, ca.CertPEM, admin)
	waitFor(t, ctx, "the server's /readyz", func() bool {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil
	})
	t.Logf("server ready %v after the master's creation began", time.Since(start).Round(time.Millisecond))
	remote, err := images.RemoteFor(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.PushFiles(ctx, io.Discard, remote, imageFiles, ""); err != nil {
		t.Fatalf("push images: %v", err)
	}

	start = time.Now()
	worker, err := p.CreateHost(ctx, provider.HostSpec{
		Cluster: c, Name: "demo-node-0", Role: provider.RoleWorker,
		Args: []string{"agent", "--server", apiURL, "--token", joinToken, "--state-dir", "$(STATE_DIR)/agent",
			"--node-name", "demo-node-0", "--node-ip", "$(HOST_IP)", "--cgroup-root", "/wharf/" + c.Key() + "/demo-node-0"},
	})
	if err != nil {
		t.Fatalf("worker: %v", err)
	}
	t.Logf("worker host created in %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, ctx, "node demo-node-0 Ready", func() bool {
		n, err := cs.CoreV1().Nodes().Get(ctx, "demo-node-0", metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	t.Logf("node Ready %v after the worker's creation began", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: images.Ref("busybox"), Command: []string{"sleep", "3600"},
			// portmap's rules live outside the state dir: they must go too.
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 18080}},
		}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "pod sleeper Running", func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	t.Logf("pod Running %v after its creation (images pulled from the master)", time.Since(start).Round(time.Millisecond))
	shims, sandboxes := containerdTraces(worker.StateDir)
	if len(shims) == 0 || len(sandboxes) == 0 {
		t.Fatal("the worker's containerd has no shim sockets: the pod runs elsewhere?")
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(data), worker.StateDir) {
		t.Fatal("no mounts below the worker's state dir while a pod runs")
	}

	workerMachine := l.machineOf(worker.Address)
	traces := workerMachine.netTraces()
	t.Logf("the worker's network set-up: %q", traces)
	if len(traces) == 0 {
		t.Error("the worker's machine shows no network set-up while a pod runs")
	}
	for _, h := range []provider.Host{worker, master} {
		start := time.Now()
		if err := p.DeleteHost(ctx, c, h.Name); err != nil {
			t.Fatalf("DeleteHost %s: %v", h.Name, err)
		}
		t.Logf("host %s deleted in %v", h.Name, time.Since(start).Round(time.Millisecond))
		checkGone(t, l, h)
	}
	if left := workerMachine.netTraces(); len(left) > 0 {
		t.Errorf("the worker's machine still has %q", left)
	}
	for _, s := range shims {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("shim socket %s left (%v)", s, err)
		}
	}
	results, _ := os.ReadDir(containerd.CNIResultsDir)
	for _, r := range results {
		for _, id := range sandboxes {
			if strings.Contains(r.Name(), id) {
				t.Errorf("CNI result %s of sandbox %s left", r.Name(), id)
			}
		}
	}
	if hosts, err := p.ListHosts(ctx, c); err != nil || len(hosts) > 0 {
		t.Errorf("ListHosts after deleting every host: %v, %v", hosts, err)
	}
	if entries, _ := os.ReadDir(l.baseDir); len(entries) > 0 {
		t.Errorf("base dir %s not empty: %v", l.baseDir, entries)
	}
	if groups, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + c.Key()); len(groups) > 0 {
		t.Errorf("the cluster's cgroups are left: %v", groups)
	}
}

// buildWharf builds the wharf binary, wharf-cni next to it, and the pause
// and busybox images.
func buildWharf(t *testing.T, ctx context.Context) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "wharf")
	start := time.Now()
	for pkg, out := range map[string]string{"wharf.dev/wharf/cmd/wharf": bin, "wharf.dev/wharf/cmd/wharf-cni": filepath.Join(dir, "wharf-cni")} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		if strings.HasSuffix(pkg, "wharf-cni") {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build does
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	built, err := images.Build(ctx, testLogger(t), images.BuildOptions{OutDir: filepath.Join(dir, "images"), Only: []string{"pause", "busybox"}})
	if err != nil {
		t.Fatalf("images: %v", err)
	}
	var files []string
	for _, b := range built {
		files = append(files, b.Path)
	}
	t.Logf("wharf and images built in %v", time.Since(start).Round(time.Millisecond))
	return bin, files
}

// clients returns a clientset for the cluster and a kubeconfig file.
func clients(t *testing.T, url string, caPEM []byte, token string) (*kubernetes.Clientset, string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "admin"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return cs, path
}

// containerdTraces returns what a host's containerd keeps outside its
// state dir: the shim sockets, and the sandbox ids that name CNI results.
func containerdTraces(stateDir string) (shims, sandboxes []string) {
	state := filepath.Join(stateDir, "agent", "containerd", "state")
	files, _ := filepath.Glob(filepath.Join(state, "io.containerd.runtime.v2.task", "*", "*", "address"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		shims = append(shims, strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://"))
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "io.containerd.grpc.v1.cri", "sandboxes", "*"))
	for _, d := range dirs {
		sandboxes = append(sandboxes, filepath.Base(d))
	}
	return shims, sandboxes
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
