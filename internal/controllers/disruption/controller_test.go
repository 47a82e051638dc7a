package disruption

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
)

const ns = "default"

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type podOpt func(*v1.Pod)

func mkPod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Status: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{
			{Type: v1.PodReady, Status: v1.ConditionTrue},
		}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *v1.Pod) { p.Status.Conditions[0].Status = v1.ConditionFalse }

func terminating(p *v1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }

func ownedBy(kind, apiVersion, name string) podOpt {
	return func(p *v1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}}
	}
}

func pods(n int, opts ...podOpt) []runtime.Object {
	var out []runtime.Object
	for i := range n {
		out = append(out, mkPod(string(rune('a'+i)), opts...))
	}
	return out
}

func replicaSet(name string, replicas int32, deployment string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec:       appsv1.ReplicaSetSpec{Replicas: &replicas},
	}
	if deployment != "" {
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deployment, UID: types.UID("uid-" + deployment), Controller: ptr.To(true)}}
	}
	return rs
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
	}
}

func pdb(minAvailable, maxUnavailable *intstr.IntOrString, disrupted map[string]metav1.Time) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "budget", Namespace: ns, Generation: 3},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: minAvailable, MaxUnavailable: maxUnavailable,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: disrupted},
	}
}

func intOr(v int32) *intstr.IntOrString    { return ptr.To(intstr.FromInt32(v)) }
func percent(v string) *intstr.IntOrString { return ptr.To(intstr.FromString(v)) }

// newController runs a controller's informers over objs; it is synced by
// calling sync, at time t0.
func newController(t *testing.T, objs ...runtime.Object) (*Controller, *fake.Clientset, *fakeapi.Recorder) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(cs, 0)
	rec := &fakeapi.Recorder{}
	c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), cs, factory, rec)
	c.now = func() time.Time { return t0 }
	// StatefulSets (or any other kind) through their scale subresource.
	c.scaleOfRef = func(_ context.Context, _ string, ref *metav1.OwnerReference) (*controllerAndScale, error) {
		if ref.Kind == "StatefulSet" && ref.Name == "db" {
			return &controllerAndScale{uid: ref.UID, scale: 4}, nil
		}
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return c, cs, rec
}

func TestBudgetStatus(t *testing.T) {
	recent := metav1.NewTime(t0.Add(-30 * time.Second))
	old := metav1.NewTime(t0.Add(-3 * time.Minute))
	rsOf := ownedBy("ReplicaSet", "apps/v1", "web-1")
	tests := []struct {
		name       string
		pdb        *policyv1.PodDisruptionBudget
		objs       []runtime.Object
		want       policyv1.PodDisruptionBudgetStatus
		wantReason string
		wantEvent  string
	}{
		{
			name: "minAvailable count, enough",
			pdb:  pdb(intOr(2), nil, nil),
			objs: pods(3),
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3, DisruptionsAllowed: 1},
		},
		{
			name: "minAvailable count, one not ready",
			pdb:  pdb(intOr(3), nil, nil),
			objs: append(pods(2), mkPod("z", notReady)),
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 3, ExpectedPods: 3},
		},
		{
			name: "terminating pods are not healthy",
			pdb:  pdb(intOr(1), nil, nil),
			objs: append(pods(1), mkPod("z", terminating)),
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 2},
		},
		{
			name: "minAvailable percentage of a Deployment's replicas",
			pdb:  pdb(percent("50%"), nil, nil),
			objs: append(pods(3, rsOf), replicaSet("web-1", 3, "web"), deployment("web", 4)),
			// 50% of 4, rounded up: 2; 3 healthy.
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 4, DisruptionsAllowed: 1},
		},
		{
			name: "maxUnavailable of a bare ReplicaSet",
			pdb:  pdb(nil, intOr(1), nil),
			objs: append(pods(3, rsOf), replicaSet("web-1", 3, "")),
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3, DisruptionsAllowed: 1},
		},
		{
			name: "maxUnavailable percentage of a StatefulSet through its scale",
			pdb:  pdb(nil, percent("30%"), nil),
			objs: pods(4, ownedBy("StatefulSet", "apps/v1", "db")),
			// 30% of 4 rounded up: 2 may be unavailable.
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 4, DesiredHealthy: 2, ExpectedPods: 4, DisruptionsAllowed: 2},
		},
		{
			name:       "a controller with no scale fails safe",
			pdb:        pdb(nil, intOr(1), nil),
			objs:       pods(2, ownedBy("Widget", "example.com/v1", "w")),
			want:       policyv1.PodDisruptionBudgetStatus{},
			wantReason: policyv1.SyncFailedReason,
			wantEvent:  "CalculateExpectedPodCountFailed",
		},
		{
			name:      "unmanaged pods with a percentage",
			pdb:       pdb(percent("50%"), nil, nil),
			objs:      append(append(pods(2, rsOf), mkPod("z")), replicaSet("web-1", 2, "")),
			want:      policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 1, ExpectedPods: 2, DisruptionsAllowed: 2},
			wantEvent: "UnmanagedPods",
		},
		{
			name:      "no pods",
			pdb:       pdb(intOr(1), nil, nil),
			want:      policyv1.PodDisruptionBudgetStatus{DesiredHealthy: 1},
			wantEvent: "NoPods",
		},
		{
			name: "disruptedPods: recent kept and not healthy, expired and missing pruned",
			pdb:  pdb(intOr(1), nil, map[string]metav1.Time{"a": recent, "b": old, "gone": recent}),
			objs: pods(3),
			want: policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 3, DisruptionsAllowed: 1,
				DisruptedPods: map[string]metav1.Time{"a": recent}},
			wantEvent: "NotDeleted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cs, rec := newController(t, append(tt.objs, tt.pdb)...)
			ctx := context.Background()
			err := c.sync(ctx, ns+"/budget")
			if (err != nil) != (tt.wantReason == policyv1.SyncFailedReason) {
				t.Fatalf("sync: %v", err)
			}
			got, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "budget", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if tt.wantReason == "" {
				want.ObservedGeneration = 3
				tt.wantReason = policyv1.InsufficientPodsReason
				if want.DisruptionsAllowed > 0 {
					tt.wantReason = policyv1.SufficientPodsReason
				}
			}
			if diff := cmp.Diff(want, got.Status, cmpopts.IgnoreFields(policyv1.PodDisruptionBudgetStatus{}, "Conditions"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != policyv1.DisruptionAllowedCondition || got.Status.Conditions[0].Reason != tt.wantReason {
				t.Errorf("conditions %+v, want one DisruptionAllowed with reason %s", got.Status.Conditions, tt.wantReason)
			}
			if tt.wantEvent != "" && !hasEvent(rec, tt.wantEvent) {
				t.Errorf("events %+v, want one with reason %s", rec.Events(), tt.wantEvent)
			}
		})
	}
}

func hasEvent(rec *fakeapi.Recorder, reason string) bool {
	for _, e := range rec.Events() {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// A status already right is not written again.
func TestBudgetStatusUnchangedIsNotWritten(t *testing.T) {
	c, cs, _ := newController(t, append(pods(3), pdb(intOr(2), nil, nil))...)
	ctx := context.Background()
	if err := c.sync(ctx, ns+"/budget"); err != nil {
		t.Fatal(err)
	}
	// Let the informer see the write, then sync again.
	for {
		p, _ := c.pdbLister.PodDisruptionBudgets(ns).Get("budget")
		if p != nil && p.Status.ObservedGeneration == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cs.ClearActions()
	if err := c.sync(ctx, ns+"/budget"); err != nil {
		t.Fatal(err)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("second sync wrote %v", a)
		}
	}
}

func TestStaleDisruptionTarget(t *testing.T) {
	cond := func(at time.Time, reason string) podOpt {
		return func(p *v1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(at)})
		}
	}
	tests := []struct {
		name      string
		pod       *v1.Pod
		wantStale bool
		wantAfter time.Duration
		wantReset bool
	}{
		{name: "no condition", pod: mkPod("a")},
		{name: "recent eviction", pod: mkPod("a", cond(t0.Add(-30*time.Second), "EvictionByEvictionAPI")), wantStale: true, wantAfter: 90 * time.Second},
		{name: "stale eviction", pod: mkPod("a", cond(t0.Add(-3*time.Minute), "EvictionByEvictionAPI")), wantStale: true, wantReset: true},
		{name: "terminating", pod: mkPod("a", cond(t0.Add(-3*time.Minute), "EvictionByEvictionAPI"), terminating)},
		{name: "kubelet's own", pod: mkPod("a", cond(t0.Add(-3*time.Minute), v1.PodReasonTerminationByKubelet))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cs, _ := newController(t, tt.pod)
			stale, after := c.staleDisruption(tt.pod)
			if stale != tt.wantStale || after != tt.wantAfter {
				t.Fatalf("staleDisruption = %v, %v; want %v, %v", stale, after, tt.wantStale, tt.wantAfter)
			}
			ctx := context.Background()
			if err := c.syncStalePod(ctx, ns+"/a"); err != nil {
				t.Fatal(err)
			}
			got, _ := cs.CoreV1().Pods(ns).Get(ctx, "a", metav1.GetOptions{})
			dt := disruptionTarget(got)
			reset := dt != nil && dt.Status == v1.ConditionFalse
			if reset != tt.wantReset {
				t.Errorf("DisruptionTarget after sync: %+v, want reset %v", dt, tt.wantReset)
			}
		})
	}
}
