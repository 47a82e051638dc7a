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

func newTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
	}
}

func newDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: newTemplate(),
		},
	}
}

func defaultedTemplate() corev1.PodTemplateSpec {
	t := newTemplate()
	t.Spec = corev1.PodSpec{
		Containers:                    []corev1.Container{defaultedContainer("nginx", "nginx:1.27", corev1.PullIfNotPresent)},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptrTo(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 corev1.DefaultSchedulerName,
	}
	return t
}

func TestDeploymentDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   func(*appsv1.Deployment)
		want func(*appsv1.Deployment)
	}{{
		name: "minimal",
	}, {
		name: "recreate gets no rolling update",
		in:   func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
		want: func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		},
	}, {
		name: "set values are kept",
		in: func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptrTo(int32(0))
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptrTo(intstr.FromInt32(1))}
		},
		want: func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptrTo(int32(0))
			d.Spec.Strategy.RollingUpdate.MaxSurge = ptrTo(intstr.FromInt32(1))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newDeployment()
			if tt.in != nil {
				tt.in(got)
			}
			Deployments().Default(got)
			want := newDeployment()
			want.Spec.Replicas = ptrTo(int32(1))
			want.Spec.Strategy = appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptrTo(intstr.FromString("25%")),
					MaxSurge:       ptrTo(intstr.FromString("25%")),
				},
			}
			want.Spec.RevisionHistoryLimit = ptrTo(int32(10))
			want.Spec.ProgressDeadlineSeconds = ptrTo(int32(600))
			want.Spec.Template = defaultedTemplate()
			if tt.want != nil {
				tt.want(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaulted deployment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeploymentValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []wantErr
	}{
		{name: "minimal is valid", mutate: func(*appsv1.Deployment) {}},
		{name: "recreate is valid", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType }},
		{name: "zero replicas are valid", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo(int32(0)) }},
		{name: "expression selector is valid", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}}}}
		}},
		{name: "bad name", mutate: func(d *appsv1.Deployment) { d.Name = "Web" }, want: []wantErr{invalid("metadata.name")}},
		{name: "negative replicas", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.replicas")}},
		{name: "no selector", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = nil }, want: []wantErr{required("spec.selector")}},
		{name: "empty selector", mutate: func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }, want: []wantErr{invalid("spec.selector")}},
		{name: "selector operator unknown", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
		}, want: []wantErr{invalid("spec.selector.matchExpressions[0].operator")}},
		{name: "selector does not match labels", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "api"} },
			want: []wantErr{invalid("spec.template.metadata.labels")}},
		{name: "template restartPolicy", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			want: []wantErr{notSupported("spec.template.spec.restartPolicy")}},
		{name: "template activeDeadlineSeconds", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo(int64(5)) },
			want: []wantErr{forbidden("spec.template.spec.activeDeadlineSeconds")}},
		{name: "template bad image", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:::1" },
			want: []wantErr{invalid("spec.template.spec.containers[0].image")}},
		{name: "template without containers", mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers = nil },
			want: []wantErr{required("spec.template.spec.containers")}},
		{name: "strategy unknown", mutate: func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }, want: []wantErr{notSupported("spec.strategy.type")}},
		{name: "recreate with rolling update", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}, want: []wantErr{forbidden("spec.strategy.rollingUpdate")}},
		{name: "maxSurge not a percent", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptrTo(intstr.FromString("ten"))}
		},
			want: []wantErr{invalid("spec.strategy.rollingUpdate.maxSurge")}},
		{name: "maxUnavailable negative", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptrTo(intstr.FromInt32(-1))}
		},
			want: []wantErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "maxUnavailable over 100%", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptrTo(intstr.FromString("150%"))}
		},
			want: []wantErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "surge and unavailable both zero", mutate: func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptrTo(intstr.FromString("0%")), MaxUnavailable: ptrTo(intstr.FromInt32(0))}
		}, want: []wantErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "negative revisionHistoryLimit", mutate: func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptrTo(int32(-1)) },
			want: []wantErr{invalid("spec.revisionHistoryLimit")}},
		{name: "negative minReadySeconds", mutate: func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = -1 }, want: []wantErr{invalid("spec.minReadySeconds")}},
		{name: "progress deadline not after minReadySeconds", mutate: func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 30
			d.Spec.ProgressDeadlineSeconds = ptrTo(int32(30))
		}, want: []wantErr{invalid("spec.progressDeadlineSeconds")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment()
			tt.mutate(d)
			r := Deployments()
			r.Default(d)
			checkErrs(t, r.Validate(d), tt.want...)
		})
	}
}

func TestDeploymentValidateUpdate(t *testing.T) {
	old := newDeployment()
	Deployments().Default(old)
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []wantErr
	}{
		{name: "replicas and image may change", mutate: func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptrTo(int32(5))
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
		}},
		{name: "selector is immutable", mutate: func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
		}, want: []wantErr{invalid("spec.selector")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := old.DeepCopy()
			tt.mutate(d)
			checkErrs(t, Deployments().ValidateUpdate(d, old), tt.want...)
		})
	}
}

func TestDeploymentValidateStatus(t *testing.T) {
	tests := []struct {
		name   string
		status appsv1.DeploymentStatus
		want   []wantErr
	}{
		{name: "consistent", status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}},
		{name: "negative", status: appsv1.DeploymentStatus{Replicas: -1}, want: []wantErr{invalid("status.replicas")}},
		{name: "more ready than replicas", status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 1}, want: []wantErr{invalid("status.readyReplicas")}},
		{name: "more available than ready", status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2}, want: []wantErr{invalid("status.availableReplicas")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newDeployment()
			d := old.DeepCopy()
			d.Status = tt.status
			checkErrs(t, Deployments().ValidateStatus(d, old), tt.want...)
		})
	}
}

func TestDeploymentRowAndScale(t *testing.T) {
	d := newDeployment()
	d.CreationTimestamp = ago(3 * time.Hour)
	d.Spec.Replicas = ptrTo(int32(3))
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "envoy:1"})
	d.Status = appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}
	r := Deployments()
	got := deploymentRow(d, testNow)
	want := []any{"web", "2/3", int64(3), int64(2), "3h", "nginx,sidecar", "nginx:1.27,envoy:1", "app=web"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(got) != len(r.Columns) {
		t.Errorf("%d cells for %d columns", len(got), len(r.Columns))
	}
	spec, status, sel := r.Scale.Get(d)
	if spec != 3 || status != 3 || sel != "app=web" {
		t.Errorf("Scale.Get = %d, %d, %q", spec, status, sel)
	}
	r.Scale.SetReplicas(d, 7)
	if *d.Spec.Replicas != 7 {
		t.Errorf("replicas = %d after SetReplicas(7)", *d.Spec.Replicas)
	}
}
