package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d9c7", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: newTemplate(),
		},
	}
}

func TestReplicaSetDefaults(t *testing.T) {
	got := newReplicaSet()
	ReplicaSets().Default(got)
	want := newReplicaSet()
	want.Spec.Replicas = ptrTo(int32(1))
	want.Spec.Template = defaultedTemplate()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted replica set (-want +got):\n%s", diff)
	}
}

func TestReplicaSetValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.ReplicaSet)
		want   []wantErr
	}{
		{name: "minimal is valid", mutate: func(*appsv1.ReplicaSet) {}},
		{name: "negative replicas", mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptrTo(int32(-2)) }, want: []wantErr{invalid("spec.replicas")}},
		{name: "no selector", mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }, want: []wantErr{required("spec.selector")}},
		{name: "empty selector", mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = &metav1.LabelSelector{} }, want: []wantErr{invalid("spec.selector")}},
		{name: "selector does not match labels", mutate: func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "5d9c7"}}
		}, want: []wantErr{invalid("spec.template.metadata.labels")}},
		{name: "template restartPolicy", mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []wantErr{notSupported("spec.template.spec.restartPolicy")}},
		{name: "template bad container name", mutate: func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec.Containers[0].Name = "a.b" },
			want: []wantErr{invalid("spec.template.spec.containers[0].name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newReplicaSet()
			tt.mutate(rs)
			r := ReplicaSets()
			r.Default(rs)
			checkErrs(t, r.Validate(rs), tt.want...)
		})
	}
}

func TestReplicaSetUpdateAndStatus(t *testing.T) {
	old := newReplicaSet()
	ReplicaSets().Default(old)
	rs := old.DeepCopy()
	rs.Spec.Selector.MatchLabels["x"] = "y"
	checkErrs(t, ReplicaSets().ValidateUpdate(rs, old), invalid("spec.selector"))

	rs = old.DeepCopy()
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1}
	checkErrs(t, ReplicaSets().ValidateStatus(rs, old), invalid("status.fullyLabeledReplicas"))
	rs.Status.FullyLabeledReplicas = 2
	checkErrs(t, ReplicaSets().ValidateStatus(rs, old))
}

func TestReplicaSetRowFieldsScale(t *testing.T) {
	rs := newReplicaSet()
	rs.CreationTimestamp = ago(90 * time.Second)
	rs.Spec.Replicas = ptrTo(int32(3))
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1}
	r := ReplicaSets()
	got := r.Row(rs)
	if len(got) != len(r.Columns) {
		t.Fatalf("%d cells for %d columns", len(got), len(r.Columns))
	}
	got = replicaSetRow(rs, testNow)
	want := []any{"web-5d9c7", int64(3), int64(3), int64(1), "90s", "nginx", "nginx:1.27", "app=web"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if f := r.SelectableFields(rs); !fields.ParseSelectorOrDie("status.replicas=3").Matches(f) {
		t.Errorf("fields %v do not match status.replicas=3", f)
	}
	if spec, status, sel := r.Scale.Get(rs); spec != 3 || status != 3 || sel != "app=web" {
		t.Errorf("Scale.Get = %d, %d, %q", spec, status, sel)
	}
}
