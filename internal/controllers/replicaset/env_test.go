package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
)

const ns = "default"

// env runs a ReplicaSet controller against fakeapi, the test playing the
// kubelet.
type env struct {
	t   *testing.T
	ctx context.Context
	cs  *fake.Clientset
	rec *fakeapi.Recorder
}

func start(t *testing.T, opts fakeapi.Options, setup ...func(*fake.Clientset)) *env {
	t.Helper()
	cs := fakeapi.New(opts)
	for _, s := range setup {
		s(cs)
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	rec := &fakeapi.Recorder{}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := New(logger, cs, factory, rec)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return &env{t: t, ctx: ctx, cs: cs, rec: rec}
}

func newReplicaSet(name string, replicas int32, app string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app, "tier": "front"}, Annotations: map[string]string{"note": "x"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "testapp:1"}}},
			},
		},
	}
}

func (e *env) createRS(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	e.t.Helper()
	out, err := e.cs.AppsV1().ReplicaSets(ns).Create(e.ctx, rs, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create replicaset: %v", err)
	}
	return out
}

func (e *env) getRS(name string) *appsv1.ReplicaSet {
	e.t.Helper()
	rs, err := e.cs.AppsV1().ReplicaSets(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get replicaset: %v", err)
	}
	return rs
}

func (e *env) scaleRS(name string, replicas int32) {
	e.t.Helper()
	for {
		rs := e.getRS(name)
		rs.Spec.Replicas = &replicas
		if _, err := e.cs.AppsV1().ReplicaSets(ns).Update(e.ctx, rs, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
}

func (e *env) pods(selector string) []v1.Pod {
	e.t.Helper()
	list, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

// markReady plays the kubelet: the named pods run and are ready.
func (e *env) markReady(names ...string) {
	e.t.Helper()
	for _, name := range names {
		for {
			pod, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
			if err != nil {
				e.t.Fatalf("get pod: %v", err)
			}
			pod.Spec.NodeName = "node-1"
			pod.Status.Phase = v1.PodRunning
			pod.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, pod, metav1.UpdateOptions{}); err == nil {
				break
			}
		}
	}
}

func (e *env) countEvents(reason string) int {
	n := 0
	for _, ev := range e.rec.Events() {
		if ev.Reason == reason {
			n++
		}
	}
	return n
}

func names(pods []v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func statusString(rs *appsv1.ReplicaSet) string {
	s := rs.Status
	term := "nil"
	if s.TerminatingReplicas != nil {
		term = fmt.Sprint(*s.TerminatingReplicas)
	}
	return fmt.Sprintf("gen %d/%d replicas %d labeled %d ready %d available %d terminating %s conditions %v",
		s.ObservedGeneration, rs.Generation, s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, term, s.Conditions)
}

var appWeb = labels.SelectorFromSet(labels.Set{"app": "web"}).String()
