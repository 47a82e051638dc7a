package deployment

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/testwait"
)

func TestDeploymentCreatesReplicaSet(t *testing.T) {
	e := start(t, fakeapi.Options{})
	d := e.create(newDeployment(3, "app:v1"))
	e.kubelet()
	testwait.For(t, "rollout", e.rolledOut())

	hash := computeHash(&d.Spec.Template, nil)
	rs := e.replicaSets()["app:v1"]
	if rs == nil || rs.Name != "web-"+hash {
		t.Fatalf("replicaset %v, want web-%s", rs, hash)
	}
	yes := true
	wantRS := metav1.ObjectMeta{
		Name:            "web-" + hash,
		Labels:          map[string]string{"app": "web", "pod-template-hash": hash},
		Annotations:     map[string]string{annRevision: "1", annDesiredReplicas: "3", annMaxReplicas: "4"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
	}
	if diff := cmp.Diff(wantRS, rs.ObjectMeta, cmpopts.IgnoreFields(metav1.ObjectMeta{}, "Namespace", "UID", "ResourceVersion", "Generation", "CreationTimestamp")); diff != "" {
		t.Errorf("replicaset metadata (-want +got):\n%s", diff)
	}
	if rs.Spec.Selector.MatchLabels["pod-template-hash"] != hash || rs.Spec.Template.Labels["pod-template-hash"] != hash {
		t.Errorf("hash label missing from selector %v or template %v", rs.Spec.Selector, rs.Spec.Template.Labels)
	}
	for _, p := range e.pods() {
		if p.Labels["pod-template-hash"] != hash {
			t.Errorf("pod %s labels %v lack the hash", p.Name, p.Labels)
		}
	}

	got := e.get()
	want := appsv1.DeploymentStatus{
		ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
		TerminatingReplicas: new(int32),
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: v1.ConditionTrue, Reason: reasonMinimumAvailable, Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: v1.ConditionTrue, Reason: reasonNewRSAvailable, Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name)},
		},
	}
	if diff := cmp.Diff(want, got.Status, cmpopts.IgnoreFields(appsv1.DeploymentCondition{}, "LastUpdateTime", "LastTransitionTime")); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if got.Annotations[annRevision] != "1" {
		t.Errorf("deployment revision %q, want 1", got.Annotations[annRevision])
	}
	if diff := cmp.Diff([]string{"Scaled up replica set web-" + hash + " from 0 to 3"}, e.events("ScalingReplicaSet")); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestRollingUpdateSteps drives a rollout one kubelet step at a time and
// checks each intermediate state (maxSurge 1, maxUnavailable 0).
func TestRollingUpdateSteps(t *testing.T) {
	e := start(t, fakeapi.Options{})
	d := newDeployment(3, "app:v1")
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &zero}
	d.Annotations = map[string]string{"kubernetes.io/change-cause": "v1"}
	e.create(d)
	testwait.For(t, "3 pods", func() (bool, string) { return len(e.pods()) == 3, e.sizes() })
	e.markReady("")
	testwait.For(t, "first rollout", e.rolledOut())
	e.arm()

	e.update(func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "app:v2"
		d.Annotations["kubernetes.io/change-cause"] = "v2"
	})
	// Each state is stable until the test, as kubelet, makes the new pods
	// ready; then the controller takes the next step.
	steps := []struct {
		state   string
		newPods int // v2 pods the kubelet then makes ready
	}{
		{"app:v1=3/3 app:v2=1/0", 1}, // surge: one new pod
		{"app:v1=2/2 app:v2=2/1", 2}, // it is ready: one old goes, one new comes
		{"app:v1=1/1 app:v2=3/2", 3},
		{"app:v1=0/0 app:v2=3/3", 3},
	}
	for i, step := range steps {
		testwait.For(t, fmt.Sprintf("step %d: %s", i, step.state), e.hasSizes(step.state))
		e.makeReady("app:v2", step.newPods)
	}
	testwait.For(t, "rollout", e.rolledOut())

	maxTotal, minAvail := e.bounds()
	if maxTotal > 4 || minAvail < 3 {
		t.Errorf("bounds broken: up to %d replicas (limit 4), down to %d available (minimum 3)", maxTotal, minAvail)
	}
	rss := e.replicaSets()
	if r := rss["app:v2"].Annotations; r[annRevision] != "2" || r["kubernetes.io/change-cause"] != "v2" {
		t.Errorf("new replicaset annotations %v, want revision 2, change-cause v2", r)
	}
	if r := rss["app:v1"].Annotations; r[annRevision] != "1" || r["kubernetes.io/change-cause"] != "v1" {
		t.Errorf("old replicaset annotations %v, want revision 1, change-cause v1", r)
	}
	if got := e.get(); got.Annotations[annRevision] != "2" || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("deployment revision %q observed %d/%d", got.Annotations[annRevision], got.Status.ObservedGeneration, got.Generation)
	}
}
