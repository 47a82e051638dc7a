package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/simnode"
)

// JobsConfig sizes the Job benchmark.
type JobsConfig struct {
	Completions, Parallelism int
	Nodes                    int
	Runs                     int
}

// Jobs measures the Job controller end to end: a `wharf server` child
// process (API, scheduler, Job controller) and simulated nodes whose pods
// "exit 0" as soon as they are bound, so that the figure is the control
// plane's: each pod is created, scheduled, reported Succeeded, counted and
// its finalizer removed, Parallelism at a time, until Completions have
// succeeded. It times each Job from its creation to its Complete condition
// (polled every 20 ms) and prints the pods completed per second.
func Jobs(ctx context.Context, env Env, out io.Writer, cfg JobsConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "jobs"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go simnode.Run(sctx, env.Logger, srv.Client, simnode.Config{Count: cfg.Nodes, Pods: cfg.Parallelism + 110, CPU: "64", Memory: "256Gi"})
	if err := waitNodes(ctx, srv, cfg.Nodes); err != nil {
		return err
	}

	jobs := srv.Client.BatchV1().Jobs("default")
	var took []time.Duration
	for run := range cfg.Runs {
		name := fmt.Sprintf("bench-%d", run)
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{
				Completions: ptr.To(int32(cfg.Completions)),
				Parallelism: ptr.To(int32(cfg.Parallelism)),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{simnode.ExitCodeAnnotation: "0"}},
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "work", Image: "registry.wharf.local/wharf/testapp:v1"}},
					},
				},
			},
		}
		start := time.Now()
		if _, err := jobs.Create(ctx, job, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create job %s: %w", name, err)
		}
		var last *batchv1.Job
		for {
			if j, err := jobs.Get(ctx, name, metav1.GetOptions{}); err == nil {
				last = j
				if complete(j) {
					break
				}
			}
			if time.Since(start) > 10*time.Minute {
				return fmt.Errorf("job %s not complete after 10 minutes: %+v", name, last.Status)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		d := time.Since(start)
		took = append(took, d)
		fmt.Fprintf(out, "jobs: run %d: %d completions, parallelism %d, on %d simulated nodes: complete in %s, %.1f pods/s\n",
			run+1, cfg.Completions, cfg.Parallelism, cfg.Nodes, d.Round(time.Millisecond), float64(cfg.Completions)/d.Seconds())
		bg := metav1.DeletePropagationBackground
		if err := jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return fmt.Errorf("delete job %s: %w", name, err)
		}
	}
	slices.Sort(took)
	med := took[len(took)/2]
	fmt.Fprintf(out, "jobs: median of %d: %s, %.1f pods/s\n", len(took), med.Round(time.Millisecond), float64(cfg.Completions)/med.Seconds())
	return nil
}

func complete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// waitNodes waits until n nodes are registered and Ready.
func waitNodes(ctx context.Context, srv *server, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		nodes, err := srv.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ready := 0
		if err == nil {
			for _, node := range nodes.Items {
				for _, c := range node.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
		}
		if ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes ready after a minute (%v)", ready, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
