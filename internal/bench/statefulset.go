package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/simnode"
)

// StatefulSetConfig sizes the StatefulSet benchmark.
type StatefulSetConfig struct {
	Replicas int
	Nodes    int
	Runs     int
}

// StatefulSetGoals are the figures the benchmark is judged by: a set of 10
// replicas all Ready within these, by pod management policy.
var StatefulSetGoals = map[appsv1.PodManagementPolicyType]time.Duration{
	appsv1.OrderedReadyPodManagement: 5 * time.Second,
	appsv1.ParallelPodManagement:     2 * time.Second,
}

// StatefulSet measures the StatefulSet controller end to end: a `wharf
// server` child process (API, scheduler, StatefulSet controller) and
// simulated nodes that report a bound pod Running and Ready at once, so the
// figure is the control plane's. It times a set of Replicas pods from its
// creation to status.readyReplicas = Replicas (polled every 20 ms), with
// OrderedReady (each pod created once the previous one is ready) and with
// Parallel, Runs times each, and prints each run and the medians against
// the goals.
func StatefulSet(ctx context.Context, env Env, out io.Writer, cfg StatefulSetConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "statefulset"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go simnode.Run(sctx, env.Logger, srv.Client, simnode.Config{Count: cfg.Nodes, Pods: cfg.Replicas + 110, CPU: "64", Memory: "256Gi"})
	if err := waitNodes(ctx, srv, cfg.Nodes); err != nil {
		return err
	}
	sets := srv.Client.AppsV1().StatefulSets("default")
	for _, policy := range []appsv1.PodManagementPolicyType{appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement} {
		var took []time.Duration
		for run := range cfg.Runs {
			name := fmt.Sprintf("bench-%s-%d", map[appsv1.PodManagementPolicyType]string{
				appsv1.OrderedReadyPodManagement: "ordered", appsv1.ParallelPodManagement: "parallel"}[policy], run)
			labels := map[string]string{"app": name}
			set := &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: appsv1.StatefulSetSpec{
					Replicas:            ptr.To(int32(cfg.Replicas)),
					ServiceName:         name,
					PodManagementPolicy: policy,
					Selector:            &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.wharf.local/wharf/testapp:v1"}}},
					},
				},
			}
			start := time.Now()
			if _, err := sets.Create(ctx, set, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create statefulset %s: %w", name, err)
			}
			var last appsv1.StatefulSetStatus
			for {
				if s, err := sets.Get(ctx, name, metav1.GetOptions{}); err == nil {
					last = s.Status
					if int(s.Status.ReadyReplicas) == cfg.Replicas {
						break
					}
				}
				if time.Since(start) > 5*time.Minute {
					return fmt.Errorf("statefulset %s not ready after 5 minutes: %+v", name, last)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
			d := time.Since(start)
			took = append(took, d)
			fmt.Fprintf(out, "statefulset: %s run %d: %d replicas on %d simulated nodes: all Ready in %s\n",
				policy, run+1, cfg.Replicas, cfg.Nodes, d.Round(time.Millisecond))
			bg := metav1.DeletePropagationBackground
			if err := sets.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
				return fmt.Errorf("delete statefulset %s: %w", name, err)
			}
		}
		slices.Sort(took)
		med := took[len(took)/2]
		fmt.Fprintf(out, "statefulset: %s median of %d: %s (goal %s)\n", policy, len(took), med.Round(time.Millisecond), StatefulSetGoals[policy])
	}
	return nil
}
