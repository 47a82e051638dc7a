package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
)

// undo does what kubectl rollout undo does client-side: patch the
// Deployment's template back to rs's (without the hash label) and take its
// annotations, in one JSON patch.
func (e *env) undo(rs *appsv1.ReplicaSet) {
	e.t.Helper()
	tmpl := rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	annotations := map[string]string{}
	for k, v := range e.get().Annotations {
		if annotationsNotCopied[k] {
			annotations[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !annotationsNotCopied[k] {
			annotations[k] = v
		}
	}
	patch, err := json.Marshal([]any{
		map[string]any{"op": "replace", "path": "/spec/template", "value": tmpl},
		map[string]any{"op": "replace", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cs.AppsV1().Deployments(ns).Patch(e.ctx, "web", types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("undo: %v", err)
	}
}

func TestRollouts(t *testing.T) {
	tests := []struct {
		name  string
		opts  fakeapi.Options
		setup func(*fake.Clientset)
		run   func(t *testing.T, e *env)
	}{
		{name: "rolling update with maxUnavailable stays within bounds", run: func(t *testing.T, e *env) {
			d := newDeployment(4, "app:v1")
			two, zero := intstr.FromInt32(2), intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &two}
			e.create(d)
			e.kubelet()
			testwait.For(t, "first rollout", e.rolledOut())
			e.arm()
			e.setImage("app:v2")
			testwait.For(t, "second rollout", e.rolledOut())
			testwait.For(t, "old scaled down", e.hasSizes("app:v1=0/0 app:v2=4/4"))
			if maxTotal, minAvail := e.bounds(); maxTotal > 4 || minAvail < 2 {
				t.Errorf("bounds broken: up to %d replicas (limit 4), down to %d available (minimum 2)", maxTotal, minAvail)
			}
		}},
		{name: "recreate waits for old pods to be gone", opts: fakeapi.Options{GracefulPodDeletion: true}, run: func(t *testing.T, e *env) {
			d := newDeployment(2, "app:v1")
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			e.create(d)
			testwait.For(t, "2 pods", func() (bool, string) { return len(e.pods()) == 2, e.sizes() })
			e.markReady("")
			testwait.For(t, "first rollout", e.rolledOut())

			e.setImage("app:v2")
			testwait.For(t, "old pods terminating", func() (bool, string) {
				pods := e.pods()
				terminating := 0
				for _, p := range pods {
					if p.DeletionTimestamp != nil {
						terminating++
					}
				}
				return terminating == 2 && e.sizes() == "app:v1=0/0", fmt.Sprint(e.sizes(), " terminating ", terminating)
			})
			// Only the kubelet ends the old pods; until then there is no
			// new ReplicaSet. Finishing one of two is not enough.
			old := e.pods()
			if err := fakeapi.Finalize(e.cs, ns, old[0].Name); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "the deployment to see one pod gone", func() (bool, string) {
				return len(e.pods()) == 1, e.sizes()
			})
			if got := e.sizes(); got != "app:v1=0/0" {
				t.Fatalf("with an old pod still terminating: %s, want no new replicaset", got)
			}
			if err := fakeapi.Finalize(e.cs, ns, old[1].Name); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "new replicaset at full size", e.hasSizes("app:v1=0/0 app:v2=2/0"))
			e.makeReady("app:v2", 2)
			testwait.For(t, "second rollout", e.rolledOut())
		}},
		{name: "undo reuses the old replicaset", run: func(t *testing.T, e *env) {
			e.create(newDeployment(3, "app:v1"))
			e.kubelet()
			testwait.For(t, "first rollout", e.rolledOut())
			e.setImage("app:v2")
			testwait.For(t, "second rollout", e.rolledOut())
			v1RS := e.replicaSets()["app:v1"]
			e.undo(v1RS)
			testwait.For(t, "undo rolled out", e.rolledOut())
			testwait.For(t, "v1 back", e.hasSizes("app:v1=3/3 app:v2=0/0"))
			rss := e.replicaSets()
			if len(rss) != 2 || rss["app:v1"].UID != v1RS.UID {
				t.Fatalf("replicasets %v: want the original v1 one reused", rss)
			}
			if a := rss["app:v1"].Annotations; a[annRevision] != "3" || a[annRevisionHistory] != "1" {
				t.Errorf("v1 replicaset revision %q history %q, want 3 and 1", a[annRevision], a[annRevisionHistory])
			}
			if got := e.get().Annotations[annRevision]; got != "3" {
				t.Errorf("deployment revision %q, want 3", got)
			}
		}},
		{name: "revisionHistoryLimit removes the oldest empty replicasets", run: func(t *testing.T, e *env) {
			d := newDeployment(2, "app:v1")
			one := int32(1)
			d.Spec.RevisionHistoryLimit = &one
			e.create(d)
			e.kubelet()
			for _, image := range []string{"app:v2", "app:v3", "app:v4"} {
				testwait.For(t, "rollout", e.rolledOut())
				e.setImage(image)
			}
			testwait.For(t, "only the last old revision kept", e.hasSizes("app:v3=0/0 app:v4=2/2"))
		}},
		{name: "scaling mid-rollout is proportional", run: func(t *testing.T, e *env) {
			d := newDeployment(10, "app:v1")
			three, two := intstr.FromInt32(3), intstr.FromInt32(2)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &three, MaxUnavailable: &two}
			e.create(d)
			testwait.For(t, "10 pods", func() (bool, string) { return len(e.pods()) == 10, e.sizes() })
			e.markReady("")
			testwait.For(t, "first rollout", e.rolledOut())
			// The new pods never become ready: the rollout stalls at the
			// limits of maxSurge and maxUnavailable.
			e.setImage("app:v2")
			testwait.For(t, "stalled rollout", e.hasSizes("app:v1=8/8 app:v2=5/0"))
			e.update(func(d *appsv1.Deployment) { twenty := int32(20); d.Spec.Replicas = &twenty })
			testwait.For(t, "proportional scale-up", e.hasSizes("app:v1=14/8 app:v2=9/0"))
			if maxTotal, _ := e.bounds(); maxTotal > 23 {
				t.Errorf("up to %d replicas, limit 23", maxTotal)
			}
			e.kubelet()
			testwait.For(t, "rollout", e.rolledOut())
			testwait.For(t, "old scaled down", e.hasSizes("app:v1=0/0 app:v2=20/20"))
		}},
		{name: "paused deployments scale but do not roll out", run: func(t *testing.T, e *env) {
			e.create(newDeployment(2, "app:v1"))
			e.kubelet()
			testwait.For(t, "first rollout", e.rolledOut())
			e.update(func(d *appsv1.Deployment) {
				d.Spec.Paused = true
				d.Spec.Template.Spec.Containers[0].Image = "app:v2"
			})
			testwait.For(t, "paused condition", func() (bool, string) {
				d := e.get()
				c := getCondition(d.Status, appsv1.DeploymentProgressing)
				return c != nil && c.Reason == reasonPaused && c.Status == v1.ConditionUnknown && d.Status.ObservedGeneration == d.Generation, fmt.Sprint(c)
			})
			e.update(func(d *appsv1.Deployment) { five := int32(5); d.Spec.Replicas = &five })
			testwait.For(t, "scaled while paused", e.hasSizes("app:v1=5/5"))
			e.update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
			testwait.For(t, "resumed rollout", e.rolledOut())
			testwait.For(t, "new template rolled out", e.hasSizes("app:v1=0/0 app:v2=5/5"))
		}},
		{name: "no progress past the deadline fails the rollout", run: func(t *testing.T, e *env) {
			d := newDeployment(1, "app:v1")
			deadline := int32(1)
			d.Spec.ProgressDeadlineSeconds = &deadline
			e.create(d)
			// No kubelet: the pod never becomes ready.
			testwait.For(t, "ProgressDeadlineExceeded", func() (bool, string) {
				d := e.get()
				c := getCondition(d.Status, appsv1.DeploymentProgressing)
				return c != nil && c.Reason == reasonTimedOut && c.Status == v1.ConditionFalse, fmt.Sprint(d.Status.Conditions)
			})
			if _, _, err := rolloutStatus(e.get()); err == nil || !strings.Contains(err.Error(), "exceeded its progress deadline") {
				t.Errorf("rollout status error = %v, want progress deadline exceeded", err)
			}
		}},
		{name: "adopts an orphaned replicaset with its template", setup: func(cs *fake.Clientset) {
			// What deleting a Deployment with --cascade=orphan leaves.
			tmpl := newDeployment(2, "app:v1").Spec.Template
			hash := computeHash(&tmpl, nil)
			tmpl.Labels = map[string]string{"app": "web", "pod-template-hash": hash}
			two := int32(2)
			rs := &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: ns, Labels: tmpl.Labels,
					Annotations: map[string]string{annRevision: "4"}},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: &two,
					Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
					Template: tmpl,
				},
			}
			if _, err := cs.AppsV1().ReplicaSets(ns).Create(context.Background(), rs, metav1.CreateOptions{}); err != nil {
				panic(err)
			}
		}, run: func(t *testing.T, e *env) {
			d := e.create(newDeployment(2, "app:v1"))
			e.kubelet()
			testwait.For(t, "rollout", e.rolledOut())
			rss := e.replicaSets()
			if len(rss) != 1 {
				t.Fatalf("replicasets %v, want only the adopted one", rss)
			}
			rs := rss["app:v1"]
			if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
				t.Errorf("controller of %s = %v, want the deployment", rs.Name, ref)
			}
			if got := e.get().Annotations[annRevision]; got != "4" {
				t.Errorf("deployment revision %q, want the adopted replicaset's 4", got)
			}
		}},
		{name: "hash collision bumps collisionCount", setup: func(cs *fake.Clientset) {
			// Someone else's ReplicaSet holds the name the deployment's
			// template hashes to; its labels do not match the selector.
			hash := computeHash(&newDeployment(1, "app:v1").Spec.Template, nil)
			zero := int32(0)
			rs := &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: ns, Labels: map[string]string{"app": "other"}},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: &zero,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
					Template: v1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "other"}},
						Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "x", Image: "other"}}},
					},
				},
			}
			if _, err := cs.AppsV1().ReplicaSets(ns).Create(context.Background(), rs, metav1.CreateOptions{}); err != nil {
				panic(err)
			}
		}, run: func(t *testing.T, e *env) {
			d := e.create(newDeployment(1, "app:v1"))
			e.kubelet()
			testwait.For(t, "rollout", e.rolledOut())
			got := e.get()
			if got.Status.CollisionCount == nil || *got.Status.CollisionCount != 1 {
				t.Fatalf("collisionCount %v, want 1", got.Status.CollisionCount)
			}
			want := "web-" + computeHash(&d.Spec.Template, got.Status.CollisionCount)
			if rs := e.replicaSets()["app:v1"]; rs == nil || rs.Name != want {
				t.Errorf("new replicaset %v, want %s", rs, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var setup []func(*fake.Clientset)
			if tt.setup != nil {
				setup = append(setup, tt.setup)
			}
			tt.run(t, start(t, tt.opts, setup...))
		})
	}
}
