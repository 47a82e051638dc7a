package statefulset

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
)

const ns = "default"

// env drives a StatefulSet controller one sync at a time against fakeapi,
// the test playing the kubelet: step waits for the informers to have seen
// every write, then syncs the set once.
type env struct {
	t   *testing.T
	ctx context.Context
	cs  *fake.Clientset
	rec *fakeapi.Recorder
	c   *Controller
}

func start(t *testing.T, set *appsv1.StatefulSet, objs ...*v1.Pod) *env {
	t.Helper()
	cs := fakeapi.New(fakeapi.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range objs {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	rec := &fakeapi.Recorder{}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := New(logger, cs, factory, rec)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	return &env{t: t, ctx: ctx, cs: cs, rec: rec, c: c}
}

// newSet returns a defaulted StatefulSet "web" of replicas pods.
func newSet(replicas int32, mutate ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, UID: "set-uid", Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			ServiceName:         "web",
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(0))},
			},
			RevisionHistoryLimit: ptr.To(int32(10)),
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "testapp:1"}}},
			},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func withClaims(whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []v1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: v1.PersistentVolumeClaimSpec{
				AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
				Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		s.Spec.Template.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: whenDeleted, WhenScaled: whenScaled}
	}
}

// settle waits until the informers hold what the API holds.
func (e *env) settle() {
	e.t.Helper()
	testwait.For(e.t, "informers to catch up", func() (bool, string) {
		pods, _ := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
		cached, _ := e.c.podLister.Pods(ns).List(labels.Everything())
		if !sameVersions(pods.Items, cached) {
			return false, "pods"
		}
		claims, _ := e.cs.CoreV1().PersistentVolumeClaims(ns).List(e.ctx, metav1.ListOptions{})
		cachedClaims, _ := e.c.claimLister.PersistentVolumeClaims(ns).List(labels.Everything())
		if !sameVersions(claims.Items, cachedClaims) {
			return false, "claims"
		}
		revs, _ := e.cs.AppsV1().ControllerRevisions(ns).List(e.ctx, metav1.ListOptions{})
		cachedRevs, _ := e.c.revisionLister.ControllerRevisions(ns).List(labels.Everything())
		if !sameVersions(revs.Items, cachedRevs) {
			return false, "revisions"
		}
		set, err := e.cs.AppsV1().StatefulSets(ns).Get(e.ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		cachedSet, err := e.c.setLister.StatefulSets(ns).Get("web")
		return err == nil && equality.Semantic.DeepEqual(set, cachedSet), "set"
	})
}

func sameVersions[T any, P interface {
	*T
	metav1.Object
}](api []T, cached []P) bool {
	if len(api) != len(cached) {
		return false
	}
	want := map[string]*T{}
	for i := range api {
		want[P(&api[i]).GetName()] = &api[i]
	}
	for _, m := range cached {
		if w := want[m.GetName()]; w == nil || !equality.Semantic.DeepEqual(w, (*T)(m)) {
			return false
		}
	}
	return true
}

// step syncs the set once, on informers that have seen every write.
func (e *env) step() {
	e.t.Helper()
	e.settle()
	if err := e.c.sync(e.ctx, ns+"/web"); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

func (e *env) set() *appsv1.StatefulSet {
	e.t.Helper()
	s, err := e.cs.AppsV1().StatefulSets(ns).Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get statefulset: %v", err)
	}
	return s
}

func (e *env) updateSet(mutate func(*appsv1.StatefulSet)) {
	e.t.Helper()
	s := e.set()
	mutate(s)
	s.Generation++ // the plain fake does not count generations
	if _, err := e.cs.AppsV1().StatefulSets(ns).Update(e.ctx, s, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update statefulset: %v", err)
	}
}

func (e *env) pods() []v1.Pod {
	e.t.Helper()
	list, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	slices.SortFunc(list.Items, func(a, b v1.Pod) int { return ordinalOf(&a) - ordinalOf(&b) })
	return list.Items
}

func (e *env) pod(name string) *v1.Pod {
	e.t.Helper()
	p, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get pod: %v", err)
	}
	return p
}

// podNames lists the pods as name@revision-suffix; revisions are 1, 2, …
// in creation order of the set's revisions.
func (e *env) podNames() []string {
	e.t.Helper()
	revs := map[string]int64{}
	list, _ := e.cs.AppsV1().ControllerRevisions(ns).List(e.ctx, metav1.ListOptions{})
	for _, r := range list.Items {
		revs[r.Name] = r.Revision
	}
	var out []string
	for _, p := range e.pods() {
		s := fmt.Sprintf("%s@%d", p.Name, revs[revisionOf(&p)])
		if p.Status.Phase == v1.PodRunning {
			s += "+"
		}
		out = append(out, s)
	}
	return out
}

// setPhase plays the kubelet: the named pods are in phase, ready if running.
func (e *env) setPhase(phase v1.PodPhase, names ...string) {
	e.t.Helper()
	for _, name := range names {
		pod := e.pod(name)
		pod.Spec.NodeName = "node-1"
		pod.Status.Phase = phase
		ready := v1.ConditionFalse
		if phase == v1.PodRunning {
			ready = v1.ConditionTrue
		}
		pod.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: ready, LastTransitionTime: metav1.Now()}}
		if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, pod, metav1.UpdateOptions{}); err != nil {
			e.t.Fatalf("update pod status: %v", err)
		}
	}
}

func (e *env) ready(names ...string) { e.setPhase(v1.PodRunning, names...) }

// readyAll marks every pod not yet running ready.
func (e *env) readyAll() {
	e.t.Helper()
	for _, p := range e.pods() {
		if p.Status.Phase != v1.PodRunning {
			e.ready(p.Name)
		}
	}
}

func (e *env) deletePod(name string) {
	e.t.Helper()
	if err := e.cs.CoreV1().Pods(ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete pod: %v", err)
	}
}

// converge steps until the set has n running pods at its update revision
// (the test readying every new pod), or fails after a bound.
func (e *env) converge() {
	e.t.Helper()
	for range 50 {
		e.step()
		e.settle()
		e.readyAll()
		s := e.set()
		if s.Status.ReadyReplicas == *s.Spec.Replicas && s.Status.UpdatedReplicas == *s.Spec.Replicas && s.Status.Replicas == *s.Spec.Replicas {
			return
		}
	}
	e.t.Fatalf("did not converge: %v, status %+v", e.podNames(), e.set().Status)
}

func (e *env) events(reason string) []string {
	var out []string
	for _, ev := range e.rec.Events() {
		if ev.Reason == reason {
			out = append(out, ev.Message)
		}
	}
	return out
}
