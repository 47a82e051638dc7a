package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: newTemplate(),
		},
	}
}

func TestDaemonSetDefaults(t *testing.T) {
	got := newDaemonSet()
	DaemonSets().Default(got)
	want := newDaemonSet()
	want.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: ptrTo(intstr.FromInt32(1)),
			MaxSurge:       ptrTo(intstr.FromInt32(0)),
		},
	}
	want.Spec.RevisionHistoryLimit = ptrTo(int32(10))
	want.Spec.Template = defaultedTemplate()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted daemon set (-want +got):\n%s", diff)
	}

	onDelete := newDaemonSet()
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	DaemonSets().Default(onDelete)
	if onDelete.Spec.UpdateStrategy.RollingUpdate != nil {
		t.Errorf("OnDelete got rollingUpdate %+v", onDelete.Spec.UpdateStrategy.RollingUpdate)
	}
}

func TestDaemonSetValidate(t *testing.T) {
	ru := func(unavailable, surge intstr.IntOrString) func(*appsv1.DaemonSet) {
		return func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &unavailable, MaxSurge: &surge}
		}
	}
	tests := []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   []wantErr
	}{
		{name: "minimal is valid", mutate: func(*appsv1.DaemonSet) {}},
		{name: "surge only is valid", mutate: ru(intstr.FromInt32(0), intstr.FromString("20%"))},
		{name: "OnDelete is valid", mutate: func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}},
		{name: "no selector", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.Selector = nil }, want: []wantErr{required("spec.selector")}},
		{name: "empty selector", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} }, want: []wantErr{invalid("spec.selector")}},
		{name: "selector does not match labels", mutate: func(ds *appsv1.DaemonSet) {
			ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		}, want: []wantErr{invalid("spec.template.metadata.labels")}},
		{name: "template restartPolicy", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			want: []wantErr{notSupported("spec.template.spec.restartPolicy")}},
		{name: "negative minReadySeconds", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = -1 }, want: []wantErr{invalid("spec.minReadySeconds")}},
		{name: "negative history", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = ptrTo(int32(-1)) },
			want: []wantErr{invalid("spec.revisionHistoryLimit")}},
		{name: "unknown strategy", mutate: func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Recreate" },
			want: []wantErr{notSupported("spec.updateStrategy.type")}},
		{name: "both zero", mutate: ru(intstr.FromInt32(0), intstr.FromString("0%")),
			want: []wantErr{required("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{name: "both set", mutate: ru(intstr.FromInt32(1), intstr.FromInt32(1)),
			want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.maxSurge")}},
		{name: "over 100%", mutate: ru(intstr.FromString("150%"), intstr.FromInt32(0)),
			want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{name: "negative", mutate: ru(intstr.FromInt32(-1), intstr.FromInt32(0)),
			want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := newDaemonSet()
			tt.mutate(ds)
			r := DaemonSets()
			r.Default(ds)
			checkErrs(t, r.Validate(ds), tt.want...)
		})
	}
}

func TestDaemonSetUpdate(t *testing.T) {
	r := DaemonSets()
	old := newDaemonSet()
	r.Default(old)
	r.PrepareForCreate(old)
	if got := TemplateGeneration(old); got != 1 {
		t.Fatalf("template generation on create = %d, want 1", got)
	}

	ds := old.DeepCopy()
	ds.Spec.Selector.MatchLabels["x"] = "y"
	checkErrs(t, r.ValidateUpdate(ds, old), invalid("spec.selector"))

	// A change outside the template keeps the template generation; a
	// template change bumps it, whatever the client sent.
	ds = old.DeepCopy()
	ds.Spec.MinReadySeconds = 5
	delete(ds.Annotations, DaemonSetTemplateGenerationAnnotation)
	r.PrepareForUpdate(ds, old)
	if got := TemplateGeneration(ds); got != 1 {
		t.Errorf("template generation after a spec change = %d, want 1", got)
	}
	ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	ds.Annotations[DaemonSetTemplateGenerationAnnotation] = "7"
	r.PrepareForUpdate(ds, old)
	if got := TemplateGeneration(ds); got != 2 {
		t.Errorf("template generation after a template change = %d, want 2", got)
	}

	ds = old.DeepCopy()
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: -1}
	checkErrs(t, r.ValidateStatus(ds, old), invalid("status.numberReady"))
}

func TestDaemonSetRow(t *testing.T) {
	ds := newDaemonSet()
	ds.CreationTimestamp = ago(90 * time.Second)
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}
	r := DaemonSets()
	if got := r.Row(ds); len(got) != len(r.Columns) {
		t.Fatalf("%d cells for %d columns", len(got), len(r.Columns))
	}
	got := daemonSetRow(ds, testNow)
	want := []any{"agent", int64(3), int64(3), int64(2), int64(1), int64(2), "kubernetes.io/os=linux", "90s", "nginx", "nginx:1.27", "app=web"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
