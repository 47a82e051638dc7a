package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"wharf.dev/wharf/internal/storage"
)

// FailoverConfig sizes the controllers' failover benchmark.
type FailoverConfig struct {
	Servers int // servers sharing one etcd
	Runs    int // power cuts measured
}

// FailoverControllers measures how long controllers stay away when the
// server running them loses power: Servers `wharf server` processes on one
// etcd (in this process, on loopback); each run kills the lease holder
// with SIGKILL, creates a ReplicaSet through a survivor at once, and times
// from the kill to the watch event of the ReplicaSet's first pod, which a
// new leader's controller creates. The killed server then comes back with
// its data dir (a follower) for the next run.
func FailoverControllers(ctx context.Context, env Env, out io.Writer, c FailoverConfig) error {
	if c.Servers < 2 || c.Runs < 1 {
		return fmt.Errorf("want at least 2 servers and 1 run")
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := storage.StartEmbedded(ctx, slog.New(slog.DiscardHandler), storage.EmbeddedConfig{
		Dir: filepath.Join(env.WorkDir, "etcd"), Name: "failover", ClientURL: client, PeerURL: peer, InitialCluster: "failover=" + peer,
		UnsafeNoFsync: true,
	})
	if err != nil {
		return err
	}
	defer etcd.Close()

	servers := make([]*server, c.Servers)
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}()
	start := func(i int) error {
		s, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, fmt.Sprintf("s%d", i)), "--etcd-servers", client)
		servers[i] = s
		return err
	}
	for i := range servers {
		if i > 0 { // one cluster: the first server's CA, keys and tokens
			dir := filepath.Join(env.WorkDir, fmt.Sprintf("s%d", i))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			for _, f := range []string{"pki", "tokens.json"} {
				if out, err := exec.Command("cp", "-a", filepath.Join(env.WorkDir, "s0", f), dir).CombinedOutput(); err != nil {
					return fmt.Errorf("copy %s: %v: %s", f, err, out)
				}
			}
		}
		if err := start(i); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "failover-controllers: %d servers on one etcd, %d power cuts of the controllers' leader\n", c.Servers, c.Runs)
	var took Latencies
	for run := range c.Runs {
		d, err := failoverOnce(ctx, servers, run, start)
		if err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		took.Add(d)
		fmt.Fprintf(out, "  run %d: kill -9 of the leader to the first pod created by the next: %s\n", run+1, round(d))
	}
	fmt.Fprintf(out, "kill -9 of the leader to the first controller action: median %s (%s)\n", round(took.Percentile(50)), took.Summary())
	return nil
}

// failoverOnce kills the leader, times the takeover and restarts the
// killed server.
func failoverOnce(ctx context.Context, servers []*server, run int, start func(int) error) (time.Duration, error) {
	leader, err := leaderIndex(ctx, servers)
	if err != nil {
		return 0, err
	}
	via := servers[(leader+1)%len(servers)].Client
	name := fmt.Sprintf("failover-%d", run)
	w, err := via.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "failover=" + name})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	killed := time.Now()
	syscall.Kill(-servers[leader].cmd.Process.Pid, syscall.SIGKILL)
	servers[leader].cmd.Wait()
	servers[leader] = nil
	labels := map[string]string{"failover": name}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.wharf.local/wharf/pause:v1"}}},
			},
		},
	}
	if _, err := via.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	timeout := time.After(60 * time.Second)
	var took time.Duration
wait:
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return 0, fmt.Errorf("pod watch ended")
			}
			if ev.Type == watch.Added {
				took = time.Since(killed)
				break wait
			}
		case <-timeout:
			return 0, fmt.Errorf("no pod of %s 60s after the kill", name)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err := start(leader); err != nil {
		return 0, fmt.Errorf("restart the killed server: %w", err)
	}
	return took, nil
}

// leaderIndex is the index of the server holding the controllers' lease.
func leaderIndex(ctx context.Context, servers []*server) (int, error) {
	var via *server
	for _, s := range servers {
		if s != nil {
			via = s
			break
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := via.Client.CoordinationV1().Leases("kube-system").Get(ctx, "wharf-controllers", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil {
			i := slices.IndexFunc(servers, func(s *server) bool {
				if s == nil {
					return false
				}
				id, _ := os.ReadFile(filepath.Join(s.dataDir, "server-id"))
				return strings.TrimSpace(string(id)) == *l.Spec.HolderIdentity
			})
			if i >= 0 {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no server holds the controllers' lease: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
