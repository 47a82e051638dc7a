//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/testserver"
)

// TestHighAvailability: a 3+2 cluster keeps every acknowledged write and
// its controllers across a power cut of the master leading etcd (which
// holds the API address), reports a lost quorum once a second master is
// cut, and `wharf cluster recover` rebuilds it with the data intact and
// three masters again. Bad input is refused with nothing touched.
func TestHighAvailability(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	for _, n := range []string{"2", "4"} {
		out, err := s.wharf("cluster", "create", "even", "--template", "k8s-local", "--master-count", n)
		if err == nil || !strings.Contains(out, "must be 1, 3, 5 or 7") {
			t.Errorf("--master-count %s: err %v, output %q; want a refusal saying 1, 3, 5 or 7", n, err, out)
		}
	}
	s.must("cluster", "create", "ha", "--template", "k8s-local", "--master-count", "3", "--node-count", "2", "--wait")
	ctx := testContext(t)
	api, lbCIDR := s.field("ha", "api_address"), s.field("ha", "lb_cidr")
	if masters := strings.Split(s.field("ha", "master_addresses"), ","); len(masters) != 3 {
		t.Fatalf("master_addresses %v, want 3", masters)
	}
	health := s.field("ha", "health_status_reason")
	for _, want := range []string{"etcd=3 of 3 members up", "etcd leader", "ha-master-0=ok", "ha-master-1=ok", "ha-master-2=ok"} {
		if !strings.Contains(health, want) {
			t.Errorf("health_status_reason %q lacks %q", health, want)
		}
	}
	vip := strings.TrimSuffix(strings.TrimPrefix(api, "https://"), ":6443")
	t.Logf("api_address %s (load balancer block %s)", api, lbCIDR)

	// Recover on a healthy cluster: refused, nothing touched.
	svcKubectl := testserver.NewKubectl(t, "33", s.kubeconfig())
	generation := func() string {
		return svcKubectl.Run("get", "clusters.wharf.dev", "ha", "-o", "jsonpath={.metadata.generation}/{.spec.recover}/{.status.status}")
	}
	before := generation()
	if out, err := s.wharf("cluster", "recover", "ha"); err == nil || !strings.Contains(out, "quorum is not lost") {
		t.Errorf("recover of a healthy cluster: err %v, output %q; want a refusal", err, out)
	}
	if after := generation(); after != before {
		t.Errorf("a refused recover changed the cluster: generation/recover/status %s → %s", before, after)
	}

	k, client := s.cluster("ha")
	k.Run("create", "deployment", "web", "--image", "registry.wharf.local/wharf/busybox:v1", "--replicas", "1", "--", "sleep", "3600")
	k.Run("rollout", "status", "deployment/web", "--timeout=90s")

	lp, err := local.New(local.Config{StateDir: filepath.Join(s.stateDir, "hosts")})
	if err != nil {
		t.Fatal(err)
	}
	masters, leader := haMasters(t, ctx, lp, vip)

	// 8 writers through the API address; the etcd leader loses power.
	w := startWriters(ctx, client, 8)
	time.Sleep(time.Second)
	cut := time.Now()
	if err := lp.PowerOff(ctx, leader.Cluster, leader.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("power cut of %s (etcd leader, holding %s)", leader.Name, vip)
	k.Run("scale", "deployment/web", "--replicas", "3")
	time.Sleep(3 * time.Second)
	acked, gap := w.stop()
	t.Logf("%d acknowledged writes; longest gap between successful writes %s", len(acked), gap.Round(time.Millisecond))
	if gap > 30*time.Second {
		t.Errorf("writes stopped for %s after the power cut", gap)
	}
	for _, name := range acked {
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged write %s lost: %v", name, err)
		}
	}
	k.Run("rollout", "status", "deployment/web", "--timeout=90s")
	t.Logf("the deployment scaled during the failover converged %s after the cut", time.Since(cut).Round(time.Millisecond))
	for _, n := range []string{"ha-node-0", "ha-node-1"} {
		k.Eventually(n+`\s+Ready`, "get", "nodes")
	}
	if h := s.field("ha", "master_addresses"); strings.Count(h, ",") != 2 {
		t.Errorf("master_addresses %q", h)
	}

	// A second master down: the quorum is lost, and said so.
	var second provider.Host
	for _, m := range masters {
		if m.Name != leader.Name {
			second = m
			break
		}
	}
	if err := lp.PowerOff(ctx, second.Cluster, second.Name); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "health UNHEALTHY: etcd quorum lost", time.Minute, func() (bool, error) {
		r := s.field("ha", "health_status_reason")
		return s.field("ha", "health_status") == "UNHEALTHY" && strings.Contains(r, "etcd quorum lost: 1 of 3 members"), nil
	})
	start := time.Now()
	s.must("cluster", "recover", "ha", "--wait")
	t.Logf("recover took %s", time.Since(start).Round(time.Millisecond))
	testserver.WaitFor(t, "HEALTHY with 3 of 3 members", time.Minute, func() (bool, error) {
		return s.field("ha", "health_status") == "HEALTHY" && strings.Contains(s.field("ha", "health_status_reason"), "etcd=3 of 3 members up"), nil
	})
	for _, name := range acked {
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged write %s lost in the recovery: %v", name, err)
		}
	}
	k.Run("rollout", "status", "deployment/web", "--timeout=90s")
	k.Run("create", "configmap", "after-recover", "--from-literal=k=v")

	// The master whose controllers lead loses power: another server takes
	// the lease, and a Deployment scaled then converges.
	holderID := strings.TrimSpace(k.Run("get", "lease", "-n", "kube-system", "wharf-controllers", "-o", "jsonpath={.spec.holderIdentity}"))
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lead *provider.Host
	for i, h := range hosts {
		id, _ := os.ReadFile(filepath.Join(h.StateDir, "server", "server-id"))
		if h.Role == provider.RoleMaster && strings.TrimSpace(string(id)) == holderID {
			lead = &hosts[i]
		}
	}
	if lead == nil {
		t.Fatalf("no master's server id is the lease holder %q", holderID)
	}
	if err := lp.PowerOff(ctx, lead.Cluster, lead.Name); err != nil {
		t.Fatal(err)
	}
	cut = time.Now()
	k.Run("scale", "deployment/web", "--replicas", "1")
	k.Eventually(`^1$`, "get", "deployment", "web", "-o", "jsonpath={.status.replicas}")
	if now := strings.TrimSpace(k.Run("get", "lease", "-n", "kube-system", "wharf-controllers", "-o", "jsonpath={.spec.holderIdentity}")); now == holderID {
		t.Errorf("the controllers' lease is still held by the powered-off %s (%s)", lead.Name, holderID)
	}
	t.Logf("power cut of %s (controllers' lease): the deployment scaled down %s after the cut", lead.Name, time.Since(cut).Round(time.Millisecond))
	if out, err := s.wharf("cluster", "recover", "ha"); err == nil {
		t.Errorf("a second recover of the healthy cluster was accepted: %s", out)
	}
	s.must("cluster", "delete", "ha", "--wait")
}

// haMasters lists the masters of the service's only cluster and the one
// holding the API address (the etcd leader's).
func haMasters(t *testing.T, ctx context.Context, lp *local.Provider, vip string) ([]provider.Host, provider.Host) {
	t.Helper()
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var masters []provider.Host
	var holder []provider.Host
	for _, h := range hosts {
		if h.Role != provider.RoleMaster {
			continue
		}
		masters = append(masters, h)
		out, _ := exec.Command("ip", "-n", filepath.Base(lp.NetNS(h.Cluster, h.Name)), "-br", "addr").CombinedOutput()
		if strings.Contains(string(out), " "+vip+"/32") {
			holder = append(holder, h)
		}
	}
	if len(masters) != 3 || len(holder) != 1 {
		t.Fatalf("masters %v, %d holding %s; want 3 and one", masters, len(holder), vip)
	}
	return masters, holder[0]
}

// writers create ConfigMaps until stopped, keeping the names the API
// acknowledged and the longest time between two acknowledgements.
type writers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  []string
	last   time.Time
	gap    time.Duration
}

func startWriters(ctx context.Context, client kubernetes.Interface, n int) *writers {
	ctx, cancel := context.WithCancel(ctx)
	w := &writers{cancel: cancel, last: time.Now()}
	for i := range n {
		w.wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				name := fmt.Sprintf("w%d-%d", i, j)
				rctx, done := context.WithTimeout(ctx, 2*time.Second)
				_, err := client.CoreV1().ConfigMaps("default").Create(rctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
				done()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				w.mu.Lock()
				w.acked = append(w.acked, name)
				w.gap = max(w.gap, time.Since(w.last))
				w.last = time.Now()
				w.mu.Unlock()
			}
		})
	}
	return w
}

func (w *writers) stop() ([]string, time.Duration) {
	w.cancel()
	w.wg.Wait()
	return w.acked, w.gap
}
