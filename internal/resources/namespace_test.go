package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestNamespaceDefaultsAndCreate(t *testing.T) {
	r := Namespaces()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup"}}}
	r.Default(ns)
	ns.Status = corev1.NamespaceStatus{}
	r.PrepareForCreate(ns)
	want := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/cleanup", "kubernetes"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("namespace (-want +got):\n%s", diff)
	}
	checkErrs(t, r.Validate(ns))
	r.PrepareForCreate(ns)
	if len(ns.Spec.Finalizers) != 2 {
		t.Errorf("finalizers %v: kubernetes added twice", ns.Spec.Finalizers)
	}
}

func TestNamespaceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Namespace)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*corev1.Namespace) {}},
		{name: "name with a dot", mutate: func(ns *corev1.Namespace) { ns.Name = "team.a" }, want: []wantErr{invalid("metadata.name")}},
		{name: "uppercase name", mutate: func(ns *corev1.Namespace) { ns.Name = "Team" }, want: []wantErr{invalid("metadata.name")}},
		{name: "namespace set", mutate: func(ns *corev1.Namespace) { ns.Namespace = "default" }, want: []wantErr{forbidden("metadata.namespace")}},
		{name: "unknown bare finalizer", mutate: func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"cleanup"} },
			want: []wantErr{invalid("spec.finalizers")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
			tt.mutate(ns)
			Namespaces().Default(ns)
			checkErrs(t, Namespaces().Validate(ns), tt.want...)
		})
	}
}

func TestNamespaceRowAndFields(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: ago(10 * 24 * time.Hour)},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	r := Namespaces()
	if diff := cmp.Diff([]any{"kube-system", "Terminating", "10d"}, namespaceRow(ns, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if !fields.ParseSelectorOrDie("status.phase=Terminating,metadata.name=kube-system").Matches(r.SelectableFields(ns)) {
		t.Errorf("fields %v", r.SelectableFields(ns))
	}
	if _, ok := r.SelectableFields(ns)["metadata.namespace"]; ok {
		t.Errorf("cluster-scoped kind offers metadata.namespace")
	}
}
