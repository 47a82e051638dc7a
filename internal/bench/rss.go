package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/simnode"
)

// RSSConfig sizes the memory benchmark.
type RSSConfig struct {
	Pods  int
	Nodes int
}

// RSS measures a `wharf server` child process (etcd, API server,
// controllers, scheduler) idle, then holding Pods running pods on Nodes
// simulated nodes (deployments of 1,000 replicas each).
func RSS(ctx context.Context, env Env, out io.Writer, cfg RSSConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "rss"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	time.Sleep(3 * time.Second)
	idle, err := srv.RSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rss: idle server %s\n", mb(idle))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go simnode.Run(sctx, env.Logger, srv.Client, simnode.Config{Count: cfg.Nodes, Pods: cfg.Pods/cfg.Nodes + 10, CPU: "64", Memory: "256Gi"})
	per := 1000
	for i := 0; i*per < cfg.Pods; i++ {
		n := int32(min(per, cfg.Pods-i*per))
		labels := map[string]string{"app": fmt.Sprintf("rss-%d", i)}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rss-%d", i)},
			Spec: appsv1.DeploymentSpec{
				Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: benchPod("x", "y").Spec},
			},
		}
		if _, err := srv.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	start := time.Now()
	fmt.Fprintf(out, "rss: waiting for %d pods to run on %d simulated nodes...\n", cfg.Pods, cfg.Nodes)
	for {
		l, err := srv.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running", ResourceVersion: "0"})
		if err == nil && len(l.Items) >= cfg.Pods {
			break
		}
		if time.Since(start) > 15*time.Minute {
			return fmt.Errorf("pods not running after 15 minutes")
		}
		time.Sleep(2 * time.Second)
	}
	fmt.Fprintf(out, "rss: %d pods running after %s\n", cfg.Pods, time.Since(start).Round(time.Second))
	time.Sleep(10 * time.Second)
	held, err := srv.RSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rss: server holding %d pods %s\n", cfg.Pods, mb(held))
	return nil
}
