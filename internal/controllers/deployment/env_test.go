package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/controllers/replicaset"
	"wharf.dev/wharf/internal/testwait"
)

const ns = "default"

// env runs the Deployment and ReplicaSet controllers against fakeapi; the
// test plays the kubelet. It watches ReplicaSets in event order to check
// rollout bounds on every state the API server went through.
type env struct {
	t   *testing.T
	ctx context.Context
	cs  *fake.Clientset
	rec *fakeapi.Recorder

	mu       sync.Mutex
	rss      map[string]*appsv1.ReplicaSet
	maxTotal int32 // highest sum of spec.replicas seen
	minAvail int32 // lowest sum of status.availableReplicas seen while armed
	armed    bool
}

func start(t *testing.T, opts fakeapi.Options, setup ...func(*fake.Clientset)) *env {
	t.Helper()
	cs := fakeapi.New(opts)
	for _, s := range setup {
		s(cs)
	}
	e := &env{t: t, cs: cs, rec: &fakeapi.Recorder{}, rss: map[string]*appsv1.ReplicaSet{}, minAvail: 1 << 30}
	factory := informers.NewSharedInformerFactory(cs, 0)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	dc := New(logger, cs, factory, e.rec)
	rsc := replicaset.New(logger, cs, factory, e.rec)
	observe := func(obj any) {
		if rs, ok := obj.(*appsv1.ReplicaSet); ok {
			e.observe(rs, false)
		}
	}
	if _, err := factory.Apps().V1().ReplicaSets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, cur any) { observe(cur) },
		DeleteFunc: func(obj any) {
			if rs, ok := obj.(*appsv1.ReplicaSet); ok {
				e.observe(rs, true)
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { dc.Run(ctx, 2) })
	wg.Go(func() { rsc.Run(ctx, 2) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return e
}

func (e *env) observe(rs *appsv1.ReplicaSet, deleted bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if deleted {
		delete(e.rss, rs.Name)
	} else {
		e.rss[rs.Name] = rs
	}
	var total, avail int32
	for _, r := range e.rss {
		total += replicasOf(r)
		avail += r.Status.AvailableReplicas
	}
	e.maxTotal = max(e.maxTotal, total)
	if e.armed {
		e.minAvail = min(e.minAvail, avail)
	}
}

// arm starts recording the lowest availability, once a first rollout is
// complete.
func (e *env) arm() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.armed = true
}

func (e *env) bounds() (maxTotal, minAvail int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxTotal, e.minAvail
}

func newDeployment(replicas int32, image string) *appsv1.Deployment {
	surge, unavailable := intstr.FromString("25%"), intstr.FromString("25%")
	ten, deadline := int32(10), int32(600)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: image}}},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
			RevisionHistoryLimit:    &ten,
			ProgressDeadlineSeconds: &deadline,
		},
	}
}

func (e *env) create(d *appsv1.Deployment) *appsv1.Deployment {
	e.t.Helper()
	out, err := e.cs.AppsV1().Deployments(ns).Create(e.ctx, d, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create deployment: %v", err)
	}
	return out
}

func (e *env) get() *appsv1.Deployment {
	e.t.Helper()
	d, err := e.cs.AppsV1().Deployments(ns).Get(e.ctx, "web", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get deployment: %v", err)
	}
	return d
}

// update changes the deployment as a user would, retrying on conflicts
// with the controller's status writes.
func (e *env) update(change func(*appsv1.Deployment)) {
	e.t.Helper()
	for {
		d := e.get()
		change(d)
		_, err := e.cs.AppsV1().Deployments(ns).Update(e.ctx, d, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			e.t.Fatalf("update deployment: %v", err)
		}
	}
}

func (e *env) setImage(image string) {
	e.update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
}

// replicaSets returns the ReplicaSets by image, with their replicas.
func (e *env) replicaSets() map[string]*appsv1.ReplicaSet {
	e.t.Helper()
	list, err := e.cs.AppsV1().ReplicaSets(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list replicasets: %v", err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range list.Items {
		rs := &list.Items[i]
		out[rs.Spec.Template.Spec.Containers[0].Image] = rs
	}
	return out
}

// sizes describes the ReplicaSets as "image=spec/available" sorted.
func (e *env) sizes() string {
	var parts []string
	for image, rs := range e.replicaSets() {
		parts = append(parts, fmt.Sprintf("%s=%d/%d", image, replicasOf(rs), rs.Status.AvailableReplicas))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (e *env) hasSizes(want string) func() (bool, string) {
	return func() (bool, string) {
		got := e.sizes()
		return got == want, got
	}
}

func (e *env) pods() []v1.Pod {
	e.t.Helper()
	list, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

// markReady plays the kubelet for every pod not ready and not terminating;
// with image set, only for pods running that image. It returns how many it
// made ready.
func (e *env) markReady(image string) int {
	e.t.Helper()
	n := 0
	for _, p := range e.pods() {
		if p.DeletionTimestamp != nil || controllerutil.IsPodReady(&p) {
			continue
		}
		if image != "" && p.Spec.Containers[0].Image != image {
			continue
		}
		p.Spec.NodeName = "node-1"
		p.Status.Phase = v1.PodRunning
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, &p, metav1.UpdateOptions{}); err == nil {
			n++
		}
	}
	return n
}

// readyPods counts the ready pods running image.
func (e *env) readyPods(image string) int {
	n := 0
	for _, p := range e.pods() {
		if p.DeletionTimestamp == nil && controllerutil.IsPodReady(&p) && p.Spec.Containers[0].Image == image {
			n++
		}
	}
	return n
}

// makeReady plays the kubelet until n pods of image are ready, as the
// ReplicaSet controller may still be creating them.
func (e *env) makeReady(image string, n int) {
	e.t.Helper()
	testwait.For(e.t, fmt.Sprintf("%d ready %s pods", n, image), func() (bool, string) {
		e.markReady(image)
		got := e.readyPods(image)
		return got == n, fmt.Sprint(got)
	})
}

// kubelet makes every pod ready (and finalizes terminating ones) until the
// test ends.
func (e *env) kubelet() {
	go func() {
		for e.ctx.Err() == nil {
			e.markReady("")
			for _, p := range e.pods() {
				if p.DeletionTimestamp != nil {
					_ = fakeapi.Finalize(e.cs, ns, p.Name)
				}
			}
			// Paces the simulated kubelet, as a real one's sync loop;
			// tests wait for the states it makes with testwait.For.
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// rolloutStatus is kubectl rollout status' verdict on the deployment
// (k8s.io/kubectl polymorphichelpers DeploymentStatusViewer).
func rolloutStatus(d *appsv1.Deployment) (done bool, msg string, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, "Waiting for deployment spec update to be observed...", nil
	}
	if c := getCondition(d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == reasonTimedOut {
		return false, "", fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	s := d.Status
	switch {
	case d.Spec.Replicas != nil && s.UpdatedReplicas < *d.Spec.Replicas:
		return false, fmt.Sprintf("%d out of %d new replicas have been updated...", s.UpdatedReplicas, *d.Spec.Replicas), nil
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas are pending termination...", s.Replicas-s.UpdatedReplicas), nil
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas are available...", s.AvailableReplicas, s.UpdatedReplicas), nil
	}
	return true, "successfully rolled out", nil
}

func (e *env) rolledOut() func() (bool, string) {
	return func() (bool, string) {
		d := e.get()
		done, msg, err := rolloutStatus(d)
		if err != nil {
			e.t.Fatalf("rollout status: %v", err)
		}
		return done, fmt.Sprintf("%s; %s; status %+v", msg, e.sizes(), d.Status)
	}
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
