package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/local"
)

// HAConfig sizes the high-availability benchmark.
type HAConfig struct {
	Runs    int           // 3+3 clusters created
	Writers int           // concurrent writers in the throughput runs
	Load    time.Duration // each throughput run
}

// HA measures clusters of several masters (root, local provider): 3+3
// create time and memory; write throughput and p99 through the API
// address of 3 masters and of 1, in the same run; the power cut of the
// master leading etcd (it holds the API address) to the first write
// through that address and to the controllers acting again; and a lost
// quorum's `wharf cluster recover` to HEALTHY.
func HA(ctx context.Context, env Env, out io.Writer, cfg HAConfig) error {
	svc, err := startService(ctx, env)
	if err != nil {
		return err
	}
	defer svc.stop()
	var create Latencies
	for i := range cfg.Runs {
		name := fmt.Sprintf("ha%d", i)
		start := time.Now()
		c, err := svc.create(ctx, name, 3, 3)
		if err != nil {
			return err
		}
		create.Add(time.Since(start))
		if i == 0 {
			fmt.Fprintf(out, "ha: memory of a 3+3 cluster (every process of its hosts): %s\n", clusterMemory(c))
		}
		if err := svc.delete(ctx, name); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "ha: 3+3 create to CREATE_COMPLETE (every master a voter, nodes Ready): %s\n", create.Summary())

	for _, masters := range []int{1, 3} {
		name := fmt.Sprintf("tp%d", masters)
		if _, err := svc.create(ctx, name, masters, 1); err != nil {
			return err
		}
		kc, err := svc.clusterClient(name)
		if err != nil {
			return err
		}
		n, lat, err := writeLoad(ctx, kc, cfg.Writers, cfg.Load)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ha: %d master(s), %d writers for %s: %.0f writes/s, p50 %s, p99 %s\n", masters, cfg.Writers, cfg.Load,
			float64(n)/cfg.Load.Seconds(), lat.Percentile(50).Round(10*time.Microsecond), lat.Percentile(99).Round(10*time.Microsecond))
		if err := svc.delete(ctx, name); err != nil {
			return err
		}
	}
	return svc.failover(ctx, out)
}

// create makes a masters+nodes cluster and waits for CREATE_COMPLETE.
func (s *benchService) create(ctx context.Context, name string, masters, nodes int) (*wharfv1.Cluster, error) {
	if _, err := s.wharf.Clusters("default").Create(ctx, &wharfv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       wharfv1.ClusterSpec{Template: "bench", MasterCount: int32(masters), NodeCount: int32(nodes)},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	return s.waitStatus(ctx, name, wharfv1.StatusCreateComplete, 5*time.Minute)
}

// writeLoad creates ConfigMaps from writers goroutines for d.
func writeLoad(ctx context.Context, kc kubernetes.Interface, writers int, d time.Duration) (int64, *Latencies, error) {
	var n atomic.Int64
	var lat Latencies
	var firstErr error
	var once sync.Once
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				start := time.Now()
				_, err := kc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("load-%d-%d", w, i)},
					Data:       map[string]string{"k": strings.Repeat("v", 256)},
				}, metav1.CreateOptions{})
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				lat.Add(time.Since(start))
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), &lat, firstErr
}

// failover power-cuts the master leading etcd of a 3+2 cluster while
// writes go on, then a second master, and recovers the quorum.
func (s *benchService) failover(ctx context.Context, out io.Writer) error {
	const name = "fo"
	if _, err := s.create(ctx, name, 3, 2); err != nil {
		return err
	}
	defer s.delete(context.WithoutCancel(ctx), name)
	kc, err := s.clusterClient(name)
	if err != nil {
		return err
	}
	fast, err := s.clusterClient(name)
	if err != nil {
		return err
	}
	labels := map[string]string{"app": "fo"}
	p := sleepPod("x")
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fo"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: p.Spec}},
	}
	if _, err := kc.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	pods := func() int {
		l, err := kc.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=fo"})
		if err != nil {
			return -1
		}
		return len(l.Items)
	}
	if err := until(ctx, time.Minute, func() bool { return pods() == 1 }); err != nil {
		return fmt.Errorf("the deployment's pod: %w", err)
	}
	c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	vip := strings.TrimSuffix(strings.TrimPrefix(c.Status.APIAddress, "https://"), ":6443")
	lp, err := local.New(local.Config{StateDir: s.hostsDir, Logger: s.env.Logger})
	if err != nil {
		return err
	}
	masters, holder, err := s.masters(ctx, lp, c, vip)
	if err != nil {
		return err
	}

	cut := time.Now()
	if err := lp.PowerOff(ctx, holder.Cluster, holder.Name); err != nil {
		return err
	}
	// The first write through the API address, each try bounded.
	var write, controllers time.Duration
	for i := 0; ; i++ {
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := fast.CoreV1().ConfigMaps("default").Create(tctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("after-cut-%d", i)}}, metav1.CreateOptions{})
		cancel()
		if err == nil {
			write = time.Since(cut)
			break
		}
		if time.Since(cut) > time.Minute {
			return fmt.Errorf("no write through %s a minute after the power cut of %s: %w", vip, holder.Name, err)
		}
	}
	if _, err := fast.AppsV1().Deployments("default").Patch(ctx, "fo", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale after the cut: %w", err)
	}
	if err := until(ctx, time.Minute, func() bool { return pods() == 3 }); err != nil {
		return fmt.Errorf("controllers after the power cut of %s: %w", holder.Name, err)
	}
	controllers = time.Since(cut)
	fmt.Fprintf(out, "ha: power cut of the etcd leader (%s) to the first write through the API address: %s\n", holder.Name, write.Round(time.Millisecond))
	fmt.Fprintf(out, "ha: same power cut to a Deployment scaled after it having its pods: %s\n", controllers.Round(time.Millisecond))

	// Lose the quorum: one more master down.
	var second *provider.Host
	for i := range masters {
		if masters[i].Name != holder.Name {
			second = &masters[i]
			break
		}
	}
	if err := lp.PowerOff(ctx, second.Cluster, second.Name); err != nil {
		return err
	}
	if err := until(ctx, time.Minute, func() bool {
		c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && strings.HasPrefix(c.Status.HealthStatusReason["etcd"], "etcd quorum lost")
	}); err != nil {
		return fmt.Errorf("quorum loss not reported: %w", err)
	}
	start := time.Now()
	if out, err := s.cli("cluster", "recover", name, "--wait"); err != nil {
		return fmt.Errorf("recover: %v\n%s", err, out)
	}
	recovered := time.Since(start)
	if err := until(ctx, time.Minute, func() bool {
		c, err := s.wharf.Clusters("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil && c.Status.HealthStatus == wharfv1.HealthHealthy
	}); err != nil {
		return fmt.Errorf("not HEALTHY after recover: %w", err)
	}
	fmt.Fprintf(out, "ha: wharf cluster recover after losing 2 of 3 masters: %s to UPDATE_COMPLETE, %s to HEALTHY\n",
		recovered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// masters lists the cluster's masters and the one holding vip.
func (s *benchService) masters(ctx context.Context, lp *local.Provider, c *wharfv1.Cluster, vip string) ([]provider.Host, *provider.Host, error) {
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	var masters []provider.Host
	var holder *provider.Host
	for _, h := range hosts {
		if h.Cluster.UID != string(c.UID) || h.Role != provider.RoleMaster {
			continue
		}
		masters = append(masters, h)
		out, _ := exec.Command("ip", "-n", filepath.Base(lp.NetNS(h.Cluster, h.Name)), "-br", "addr").CombinedOutput()
		if strings.Contains(string(out), " "+vip+"/32") {
			holder = &masters[len(masters)-1]
		}
	}
	if holder == nil {
		return nil, nil, errors.New("no master holds the API address " + vip)
	}
	h := *holder
	return masters, &h, nil
}

// until polls cond every 20 ms for at most d.
func until(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
