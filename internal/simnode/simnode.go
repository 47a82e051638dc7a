// Package simnode runs simulated nodes against a Wharf (or any Kubernetes)
// API: each registers a Node, renews its Lease, reports the pods bound to it
// as running (or, if annotated, as completed), and finishes their deletion.
// There are no containers. The demo uses it before real agents exist, and
// benchmarks use it to hold many pods on many nodes cheaply, as Kubernetes'
// kwok does.
package simnode

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// ExitCodeAnnotation on a pod whose restartPolicy is Never makes its
// containers "exit" with that code as soon as the pod is bound: the pod is
// reported Succeeded (0) or Failed (anything else) instead of Running, so
// that run-to-completion pods (helm test hooks, Job pods) can finish on
// simulated nodes. Without it, every pod runs until deleted.
const ExitCodeAnnotation = "sim.wharf.dev/exit-code"

// Config describes the simulated nodes.
type Config struct {
	// Prefix names the nodes <prefix>-0, <prefix>-1, ...
	Prefix string
	Count  int
	// CPU, Memory and Pods are each node's capacity.
	CPU, Memory string
	Pods        int
	// LeaseInterval is how often leases are renewed (default 1s).
	LeaseInterval time.Duration
	// Labels are added to every node.
	Labels map[string]string
}

// Run registers the nodes and simulates them until ctx ends.
func Run(ctx context.Context, log *slog.Logger, client kubernetes.Interface, cfg Config) error {
	if cfg.Prefix == "" {
		cfg.Prefix = "sim"
	}
	if cfg.CPU == "" {
		cfg.CPU = "4"
	}
	if cfg.Memory == "" {
		cfg.Memory = "8Gi"
	}
	if cfg.Pods == 0 {
		cfg.Pods = 110
	}
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = time.Second
	}
	names := make([]string, cfg.Count)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", cfg.Prefix, i)
		if err := register(ctx, client, cfg, names[i], i); err != nil {
			return err
		}
	}
	log.Info("simulated nodes registered", "count", cfg.Count, "prefix", cfg.Prefix)
	ours := map[string]int{}
	for i, n := range names {
		ours[n] = i
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); renewLeases(ctx, log, client, names, cfg.LeaseInterval) }()
	go func() { defer wg.Done(); runPods(ctx, log, client, ours) }()
	wg.Wait()
	return nil
}

func register(ctx context.Context, client kubernetes.Interface, cfg Config, name string, i int) error {
	labels := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "simulated"}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cfg.CPU),
		corev1.ResourceMemory: resource.MustParse(cfg.Memory),
		corev1.ResourcePods:   *resource.NewQuantity(int64(cfg.Pods), resource.DecimalSI),
	}
	now := metav1.Now()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR(i).String(), PodCIDRs: []string{podCIDR(i).String()}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "SimulatedReady",
				Message: "simulated node", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP(i).String()}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-wharf-sim", ContainerRuntimeVersion: "simulated://0", OperatingSystem: "linux", Architecture: "amd64", OSImage: "simulated", KernelVersion: "simulated"},
		},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	return nil
}

// nodeIP and podCIDR give node i a made-up address and pod range.
func nodeIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 200, byte((i + 1) >> 8), byte(i + 1)})
}

func podCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + i>>8), byte(i), 0}), 24)
}

// RenewLease renews node's Lease in kube-node-lease, creating it (held by
// node, for 40 seconds) if it does not exist yet.
func RenewLease(ctx context.Context, client kubernetes.Interface, node string) error {
	leases := client.CoordinationV1().Leases("kube-node-lease")
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, node, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
		}, metav1.CreateOptions{})
	case err == nil:
		l.Spec.RenewTime = &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renew lease of node %s: %w", node, err)
	}
	return nil
}

func renewLeases(ctx context.Context, log *slog.Logger, client kubernetes.Interface, names []string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, n := range names {
			if err := RenewLease(ctx, client, n); err != nil && ctx.Err() == nil {
				log.Warn("lease renewal failed", "node", n, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runPods reports bound pods as running and finishes deletions.
func runPods(ctx context.Context, log *slog.Logger, client kubernetes.Interface, ours map[string]int) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	work := make(chan *corev1.Pod, 4096)
	handle := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok {
			if _, mine := ours[pod.Spec.NodeName]; mine {
				select {
				case work <- pod:
				case <-ctx.Done():
				}
			}
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) }})
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case pod := <-work:
					if err := sync1(ctx, client, pod, ours[pod.Spec.NodeName]); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
						log.Warn("simulated pod update failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func sync1(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, node int) error {
	pods := client.CoreV1().Pods(pod.Namespace)
	if pod.DeletionTimestamp != nil {
		// As an agent: the stopped pod's terminal phase (SIGTERM's exit
		// code), then the final delete.
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			p := pod.DeepCopy()
			complete(p, node, 143, metav1.Now())
			if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
	}
	switch pod.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
		return nil
	}
	p := pod.DeepCopy()
	now := metav1.Now()
	if code, ok := exitCode(pod); ok {
		complete(p, node, code, now)
		_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = nodeIP(node).String()
	p.Status.PodIP = podIP(node, pod)
	p.Status.StartTime = &now
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady} {
		setCondition(p, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// exitCode is the code ExitCodeAnnotation asks pod's containers to exit
// with; ok is false if the pod is to run (no annotation, a restartPolicy
// that would restart the containers, or not a number).
func exitCode(pod *corev1.Pod) (code int32, ok bool) {
	v, found := pod.Annotations[ExitCodeAnnotation]
	if !found || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// complete reports p as run to its end, its containers terminated with code,
// as the kubelet does for a pod that does not restart.
func complete(p *corev1.Pod, node int, code int32, now metav1.Time) {
	phase, reason := corev1.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	p.Status.Phase = phase
	p.Status.HostIP = nodeIP(node).String()
	p.Status.PodIP = podIP(node, p)
	p.Status.StartTime = &now
	setCondition(p, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now})
	for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		setCondition(p, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now})
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Started: ptr.To(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: now, FinishedAt: now}},
		})
	}
}

func podIP(node int, pod *corev1.Pod) string {
	h := 0
	for _, c := range pod.UID {
		h = h*31 + int(c)
	}
	a := podCIDR(node).Addr().As4()
	a[3] = byte(2 + (h&0x7fffffff)%250)
	return netip.AddrFrom4(a).String()
}

func setCondition(p *corev1.Pod, c corev1.PodCondition) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == c.Type {
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}
