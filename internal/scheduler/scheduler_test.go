package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"wharf.dev/wharf/internal/testwait"
)

var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// harness runs a whole Scheduler against the fake clientset. The fake does
// not implement pods/binding, so a reactor applies bindings the way the API
// server does (409 when already bound); fail lets a case inject errors.
type harness struct {
	client   *fake.Clientset
	recorder *record.FakeRecorder
	sched    *Scheduler

	mu       sync.Mutex
	attempts map[string]int // bind calls per pod name
	fail     func(pod string, attempt int) error
}

func startHarness(t *testing.T, fail func(string, int) error, objs []runtime.Object, opts ...Option) *harness {
	t.Helper()
	h := &harness{
		client:   fake.NewClientset(objs...),
		recorder: record.NewFakeRecorder(1000),
		attempts: map[string]int{},
		fail:     fail,
	}
	h.client.PrependReactor("create", "pods", h.bindReactor)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	factory := informers.NewSharedInformerFactory(h.client, 0)
	h.sched = New(logger, h.client, factory, h.recorder, opts...)
	ctx, cancel := context.WithCancel(t.Context())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.sched.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	return h
}

func (h *harness) bindReactor(action k8stesting.Action) (bool, runtime.Object, error) {
	if action.GetSubresource() != "binding" {
		return false, nil, nil
	}
	b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
	h.mu.Lock()
	h.attempts[b.Name]++
	attempt := h.attempts[b.Name]
	h.mu.Unlock()
	if h.fail != nil {
		if err := h.fail(b.Name, attempt); err != nil {
			return true, nil, err
		}
	}
	obj, err := h.client.Tracker().Get(podsGVR, b.Namespace, b.Name)
	if err != nil {
		return true, nil, err
	}
	pod := obj.(*corev1.Pod).DeepCopy()
	if pod.Spec.NodeName != "" {
		return true, nil, apierrors.NewConflict(podsGVR.GroupResource(), b.Name,
			fmt.Errorf("pod %s is already assigned to node %q", b.Name, pod.Spec.NodeName))
	}
	pod.Spec.NodeName = b.Target.Name
	return true, b, h.client.Tracker().Update(podsGVR, pod, b.Namespace)
}

func (h *harness) pod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

func (h *harness) bindAttempts(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts[name]
}

// waitFor waits until cond holds (testwait.For for a plain condition).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, func() (bool, string) { return cond(), "not yet" })
}

func (h *harness) waitBound(t *testing.T, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range names {
		waitFor(t, "pod "+name+" to be bound", func() bool { return h.pod(t, name).Spec.NodeName != "" })
		got[name] = h.pod(t, name).Spec.NodeName
	}
	return got
}

// nextEvent returns the next recorded event whose text contains substr.
func (h *harness) nextEvent(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-h.recorder.Events:
			if strings.Contains(e, substr) {
				return e
			}
		case <-timeout:
			t.Fatalf("no event containing %q", substr)
		}
	}
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func objects(nodes []*corev1.Node, pods ...*corev1.Pod) []runtime.Object {
	var out []runtime.Object
	for _, n := range nodes {
		out = append(out, n)
	}
	for _, p := range pods {
		out = append(out, p)
	}
	return out
}
