package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/simnode"
)

// DaemonSetConfig sizes the DaemonSet benchmark.
type DaemonSetConfig struct {
	// Nodes run the DaemonSet from the start.
	Nodes int
	// NewNodes are added one at a time, each timed to its pod Running.
	NewNodes int
	// MaxUnavailable is the rolling update's maxUnavailable (an integer or
	// a percentage).
	MaxUnavailable string
}

// DaemonSet measures the DaemonSet controller end to end on a `wharf
// server` child process (API, scheduler, controllers) and simulated nodes,
// which report a bound pod Running and Ready at once, so that the figures
// are the control plane's:
//
//   - node created → its daemon pod Running: a node is registered (its
//     simulated agent starts watching at the same time, as a real agent
//     that registers does) and timed until a pod of the DaemonSet runs
//     on it: the controller's reaction to the node event, a pod create,
//     the scheduler's bind and the agent's status write;
//   - a rolling update of the image across every node, from the update
//     to the status reporting every pod updated and available.
func DaemonSet(ctx context.Context, env Env, out io.Writer, cfg DaemonSetConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "daemonset"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go simnode.Run(sctx, env.Logger, srv.Client, simnode.Config{Count: cfg.Nodes, Prefix: "sim"})
	if err := waitNodes(ctx, srv, cfg.Nodes); err != nil {
		return err
	}

	// Pods of the DaemonSet seen Running, by node, through a watch.
	var mu sync.Mutex
	runningAt := map[string]time.Time{}
	waiters := map[string]chan struct{}{}
	factory := informers.NewSharedInformerFactoryWithOptions(srv.Client, 0, informers.WithNamespace("default"))
	seen := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning || p.Labels["app"] != "bench-ds" {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, done := runningAt[p.Spec.NodeName]; !done {
			runningAt[p.Spec.NodeName] = now
			if ch, ok := waiters[p.Spec.NodeName]; ok {
				close(ch)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: seen, UpdateFunc: func(_, o any) { seen(o) },
	}); err != nil {
		return err
	}
	factory.Start(sctx.Done())
	// Shutdown waits for the informers, which stop with sctx.
	defer func() { cancel(); factory.Shutdown() }()
	factory.WaitForCacheSync(sctx.Done())

	dsClient := srv.Client.AppsV1().DaemonSets("default")
	lbls := map[string]string{"app": "bench-ds"}
	maxUnavailable := intstr.Parse(cfg.MaxUnavailable)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-ds"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.wharf.local/wharf/testapp:v1"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable},
			},
		},
	}
	start := time.Now()
	if _, err := dsClient.Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create daemonset: %w", err)
	}
	if err := waitRolledOut(ctx, srv, int32(cfg.Nodes)); err != nil {
		return err
	}
	fmt.Fprintf(out, "daemonset: created on %d simulated nodes: every pod available in %s\n", cfg.Nodes, time.Since(start).Round(time.Millisecond))

	var took []time.Duration
	for i := range cfg.NewNodes {
		name := fmt.Sprintf("new%d-0", i)
		ch := make(chan struct{})
		mu.Lock()
		waiters[name] = ch
		mu.Unlock()
		start := time.Now()
		go simnode.Run(sctx, env.Logger, srv.Client, simnode.Config{Count: 1, Prefix: fmt.Sprintf("new%d", i)})
		select {
		case <-ch:
		case <-time.After(time.Minute):
			return fmt.Errorf("node %s: no daemon pod running after a minute", name)
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		took = append(took, runningAt[name].Sub(start))
		mu.Unlock()
	}
	if len(took) > 0 {
		slices.Sort(took)
		fmt.Fprintf(out, "daemonset: node created → its pod Running, %d nodes added one by one: p50 %s, p99 %s, max %s\n",
			len(took), pct(took, 50).Round(time.Microsecond*100), pct(took, 99).Round(time.Microsecond*100), took[len(took)-1].Round(time.Microsecond*100))
	}

	total := int32(cfg.Nodes + cfg.NewNodes)
	if err := waitRolledOut(ctx, srv, total); err != nil {
		return err
	}
	cur, err := dsClient.Get(ctx, "bench-ds", metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.Spec.Template.Spec.Containers[0].Image = "registry.wharf.local/wharf/testapp:v2"
	start = time.Now()
	if _, err := dsClient.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update daemonset: %w", err)
	}
	if err := waitRolledOut(ctx, srv, total); err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(out, "daemonset: rolling update across %d nodes, maxUnavailable %s: %s (%.1f nodes/s)\n",
		total, cfg.MaxUnavailable, d.Round(time.Millisecond), float64(total)/d.Seconds())
	return nil
}

// waitRolledOut waits until the bench DaemonSet's status shows its
// current generation on n nodes, every pod updated and available (what
// `kubectl rollout status` waits for), polling every 10 ms.
func waitRolledOut(ctx context.Context, srv *server, n int32) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ds, err := srv.Client.AppsV1().DaemonSets("default").Get(ctx, "bench-ds", metav1.GetOptions{})
		if err == nil {
			s := ds.Status
			if s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled == n &&
				s.UpdatedNumberScheduled == n && s.NumberAvailable == n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemonset not rolled out on %d nodes after 5 minutes (%v)", n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
