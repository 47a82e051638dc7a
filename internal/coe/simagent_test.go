package coe

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/agent"
	"wharf.dev/wharf/internal/simnode"
)

// simRuntimeVersion is what simulated nodes report as their runtime.
const simRuntimeVersion = "fake://1.0"

// startAgent plays `wharf agent` with its flags: it joins the cluster with
// the join token (checking the CA against the token's hash, as the real
// agent does), registers its Node, renews its Lease and pretends to run the
// pods bound to it. stop ends it as a power cut would: nothing is cleaned up.
func startAgent(log *slog.Logger, args []string) (func(), error) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", "", "")
	token := fs.String("token", "", "")
	stateDir := fs.String("state-dir", "", "")
	name := fs.String("node-name", "", "")
	ip := fs.String("node-ip", "", "")
	for _, f := range []string{"cgroup-root", "cluster-cidr", "service-cidr", "resolv-conf", "registry-url", "registry-ca-file", "registry-token-file"} {
		fs.String(f, "", "")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := runAgent(ctx, log, *server, *token, *stateDir, *name, *ip); err != nil && ctx.Err() == nil {
			log.Error("simulated agent failed", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

func runAgent(ctx context.Context, log *slog.Logger, server, token, stateDir, name, ip string) error {
	var creds *agent.Credentials
	for {
		var err error
		if creds, err = agent.Join(ctx, server, token, stateDir, name, []string{ip}); err == nil {
			break
		}
		log.Debug("join failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	kube, err := kubernetes.NewForConfig(creds.RESTConfig(server, "simagent"))
	if err != nil {
		return err
	}
	if err := register(ctx, kube, name, ip); err != nil {
		return err
	}
	go runPods(ctx, kube, name)
	for tick := 0; ; tick++ {
		err := simnode.RenewLease(ctx, kube, name)
		if tick%5 == 0 && err == nil {
			err = register(ctx, kube, name, ip) // Ready again after an outage
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("simulated agent: heartbeat failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// register makes the Node, or reports it Ready.
func register(ctx context.Context, kube kubernetes.Interface, name, ip string) error {
	nodes := kube.CoreV1().Nodes()
	now := metav1.Now()
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "AgentReady",
		LastHeartbeatTime: now, LastTransitionTime: now}
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		capacity := corev1.ResourceList{
			corev1.ResourceCPU: kresource.MustParse("4"), corev1.ResourceMemory: kresource.MustParse("8Gi"),
			corev1.ResourcePods: kresource.MustParse("110"),
		}
		_, err = nodes.Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
			Status: corev1.NodeStatus{
				Capacity: capacity, Allocatable: capacity, Conditions: []corev1.NodeCondition{ready},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
				NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-wharf", ContainerRuntimeVersion: simRuntimeVersion},
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil || nodeReady(n) {
		return err
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i] = ready
		}
	}
	_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// runPods reports the node's pods running and finishes their deletion.
func runPods(ctx context.Context, kube kubernetes.Interface, name string) {
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", name).String()
	}))
	work := make(chan *corev1.Pod, 1024)
	handle := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			select {
			case work <- p:
			case <-ctx.Done():
			}
		}
	}
	factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) },
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-work:
			pods := kube.CoreV1().Pods(p.Namespace)
			if p.DeletionTimestamp != nil {
				pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
				continue
			}
			if p.Status.Phase == corev1.PodRunning {
				continue
			}
			p = p.DeepCopy()
			now := metav1.Now()
			p.Status.Phase, p.Status.StartTime = corev1.PodRunning, &now
			p.Status.PodIP = fmt.Sprintf("10.244.0.%d", 2+len(p.UID)%200)
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
			pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	}
}
