package daemonset

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/resources"
)

const ns = "default"

// env is a controller over fakeapi whose informers the test drives: it
// syncs one key at a time and resyncs the caches between steps.
type env struct {
	t       *testing.T
	ctx     context.Context
	cancel  context.CancelFunc
	cs      *fake.Clientset
	rec     *fakeapi.Recorder
	c       *Controller
	factory informers.SharedInformerFactory
}

func newEnv(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	cs := fakeapi.New(fakeapi.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx, cancel: cancel, cs: cs, rec: &fakeapi.Recorder{}}
	for _, o := range objs {
		e.create(o)
	}
	e.factory = informers.NewSharedInformerFactory(cs, 0)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.c = New(logger, cs, e.factory, e.rec)
	e.factory.Start(ctx.Done())
	e.factory.WaitForCacheSync(ctx.Done())
	t.Cleanup(func() {
		cancel()
		e.factory.Shutdown()
	})
	return e
}

func (e *env) create(o runtime.Object) {
	e.t.Helper()
	var err error
	switch o := o.(type) {
	case *v1.Node:
		_, err = e.cs.CoreV1().Nodes().Create(e.ctx, o, metav1.CreateOptions{})
	case *v1.Pod:
		st := o.Status
		var p *v1.Pod
		p, err = e.cs.CoreV1().Pods(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
		if err == nil && st.Phase != "" {
			p.Status = st
			_, err = e.cs.CoreV1().Pods(o.Namespace).UpdateStatus(e.ctx, p, metav1.UpdateOptions{})
		}
	case *appsv1.DaemonSet:
		_, err = e.cs.AppsV1().DaemonSets(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	case *appsv1.ControllerRevision:
		_, err = e.cs.AppsV1().ControllerRevisions(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	default:
		e.t.Fatalf("create %T: unsupported", o)
	}
	if err != nil {
		e.t.Fatalf("create %T: %v", o, err)
	}
}

// settle waits until the informers have seen every write so far.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if e.cacheMatches() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatal("informers did not catch up")
}

func (e *env) cacheMatches() bool {
	pods, _ := e.cs.CoreV1().Pods("").List(e.ctx, metav1.ListOptions{})
	cached, _ := e.c.podLister.List(labels.Everything())
	if len(pods.Items) != len(cached) {
		return false
	}
	for _, p := range pods.Items {
		c, err := e.c.podLister.Pods(p.Namespace).Get(p.Name)
		if err != nil || c.ResourceVersion != p.ResourceVersion {
			return false
		}
	}
	dss, _ := e.cs.AppsV1().DaemonSets("").List(e.ctx, metav1.ListOptions{})
	for _, d := range dss.Items {
		c, err := e.c.dsLister.DaemonSets(d.Namespace).Get(d.Name)
		if err != nil || c.ResourceVersion != d.ResourceVersion {
			return false
		}
	}
	hs, _ := e.cs.AppsV1().ControllerRevisions("").List(e.ctx, metav1.ListOptions{})
	ch, _ := e.c.historyLister.List(labels.Everything())
	if len(hs.Items) != len(ch) {
		return false
	}
	nodes, _ := e.cs.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		c, err := e.c.nodeLister.Get(n.Name)
		if err != nil || c.ResourceVersion != n.ResourceVersion {
			return false
		}
	}
	return true
}

// sync waits for the caches, then syncs the DaemonSet name once.
func (e *env) sync(name string) error {
	e.t.Helper()
	e.settle()
	return e.c.sync(e.ctx, keyOf(ns, name))
}

func (e *env) mustSync(name string) {
	e.t.Helper()
	if err := e.sync(name); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

func (e *env) pods() []v1.Pod {
	e.t.Helper()
	l, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(l.Items, func(a, b v1.Pod) int {
		an, _ := targetNodeName(&a)
		bn, _ := targetNodeName(&b)
		if an != bn {
			if an < bn {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return l.Items
}

// podNodes returns the target node of each pod, sorted.
func (e *env) podNodes() []string {
	var out []string
	for _, p := range e.pods() {
		n, _ := targetNodeName(&p)
		out = append(out, n)
	}
	return out
}

func (e *env) getDS(name string) *appsv1.DaemonSet {
	e.t.Helper()
	ds, err := e.cs.AppsV1().DaemonSets(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func (e *env) reasons() []string {
	var out []string
	for _, ev := range e.rec.Events() {
		out = append(out, ev.Reason)
	}
	return out
}

// setPodStatus sets a pod's phase and readiness, as an agent would.
func (e *env) setPodStatus(name string, phase v1.PodPhase, ready bool) {
	e.t.Helper()
	p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	p.Status = podStatus(phase, ready)
	if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, p, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func podStatus(phase v1.PodPhase, ready bool) v1.PodStatus {
	cond := v1.ConditionFalse
	if ready {
		cond = v1.ConditionTrue
	}
	return v1.PodStatus{Phase: phase, Conditions: []v1.PodCondition{{
		Type: v1.PodReady, Status: cond, LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour)),
	}}}
}

func node(name string, lbls map[string]string, taints ...v1.Taint) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: v1.NodeSpec{Taints: taints}}
}

func newDS(name string, mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{resources.DaemonSetTemplateGenerationAnnotation: "1"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "testapp:1"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: ptr(intstr.FromInt32(1)), MaxSurge: ptr(intstr.FromInt32(0)),
				},
			},
			RevisionHistoryLimit: ptr(int32(10)),
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

func ptr[T any](v T) *T { return &v }

// daemonPod returns a pod of ds bound to node, as the controller would
// have made it with revision hash, in phase with readiness.
func daemonPod(ds *appsv1.DaemonSet, name, nodeName, hash string, phase v1.PodPhase, ready bool) *v1.Pod {
	p := newPod(ds, nodeName, hash)
	p.GenerateName = ""
	p.Name = name
	p.Spec.NodeName = nodeName
	p.OwnerReferences[0].UID = ds.UID
	p.Status = podStatus(phase, ready)
	return p
}

func currentHash(ds *appsv1.DaemonSet) string {
	return controllerutil.ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)
}
