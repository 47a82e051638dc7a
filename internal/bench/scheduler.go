package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/scheduler"
)

// SchedulerConfig sizes the scheduler benchmark.
type SchedulerConfig struct {
	Nodes, Pods int
}

// Scheduler measures pods bound per second through the real API: a server
// in this process holds Nodes ready nodes and Pods pending pods, then the
// scheduler starts and binds them all.
func Scheduler(ctx context.Context, env Env, out io.Writer, cfg SchedulerConfig) error {
	quiet := env.Logger
	srv, err := controlplane.Start(ctx, controlplane.Options{
		Logger: quiet, DataDir: filepath.Join(env.WorkDir, "scheduler"), Listen: "127.0.0.1:0", DisableControllers: true,
	})
	if err != nil {
		return err
	}
	defer srv.Stop()
	client := kubernetes.NewForConfigOrDie(srv.Loopback)

	fmt.Fprintf(out, "scheduler: registering %d nodes and %d pending pods...\n", cfg.Nodes, cfg.Pods)
	if err := parallel(cfg.Nodes, 16, func(i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, benchNode(fmt.Sprintf("node-%d", i)), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create nodes: %w", err)
	}
	if err := parallel(cfg.Pods, 16, func(i int) error {
		_, err := client.CoreV1().Pods("default").Create(ctx, benchPod(fmt.Sprintf("pod-%d", i), fmt.Sprintf("owner-%d", i%100)), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create pods: %w", err)
	}

	// Count bindings as a client sees them, through a watch.
	var bound atomic.Int64
	var last atomic.Int64
	done := make(chan struct{})
	watchFactory := informers.NewSharedInformerFactory(client, 0)
	watchFactory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			if oldObj.(*corev1.Pod).Spec.NodeName == "" && newObj.(*corev1.Pod).Spec.NodeName != "" {
				last.Store(time.Now().UnixNano())
				if bound.Add(1) == int64(cfg.Pods) {
					close(done)
				}
			}
		},
	})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchFactory.Start(sctx.Done())
	watchFactory.WaitForCacheSync(sctx.Done())

	start := time.Now()
	factory := informers.NewSharedInformerFactory(client, 0)
	sched := scheduler.New(quiet, client, factory, nil)
	factory.Start(sctx.Done())
	go sched.Run(sctx)
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("only %d of %d pods bound after 10 minutes", bound.Load(), cfg.Pods)
	case <-ctx.Done():
		return ctx.Err()
	}
	elapsed := time.Unix(0, last.Load()).Sub(start)
	fmt.Fprintf(out, "scheduler: %d pods bound on %d nodes in %s (from scheduler start, including its initial list): %.0f pods/s\n",
		cfg.Pods, cfg.Nodes, elapsed.Round(time.Millisecond), float64(cfg.Pods)/elapsed.Seconds())
	return nil
}

func benchNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}},
		},
	}
}

func benchPod(name, owner string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": owner}, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID("uid-" + owner), Controller: ptrTrue(),
		}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "registry.wharf.local/wharf/testapp:v1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
			}},
		}}},
	}
}

func ptrTrue() *bool { t := true; return &t }
