package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newHPA() *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    10,
		},
	}
}

func cpuMetric(util int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo(util)},
	}}
}

func TestHPADefaults(t *testing.T) {
	got := newHPA()
	HorizontalPodAutoscalers().Default(got)
	want := newHPA()
	want.Spec.MinReplicas = ptrTo(int32(1))
	want.Spec.Metrics = []autoscalingv2.MetricSpec{cpuMetric(80)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted hpa (-want +got):\n%s", diff)
	}

	// A behavior gets the default rules where it sets none.
	got = newHPA()
	got.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptrTo(int32(60))}}
	HorizontalPodAutoscalers().Default(got)
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	wantBehavior := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptrTo(int32(0)), SelectPolicy: &maxPolicy, Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}, {Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		}},
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptrTo(int32(60)), SelectPolicy: &maxPolicy, Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		}},
	}
	if diff := cmp.Diff(wantBehavior, got.Spec.Behavior); diff != "" {
		t.Errorf("defaulted behavior (-want +got):\n%s", diff)
	}
}

func TestHPAValidate(t *testing.T) {
	q := resource.MustParse
	tests := []struct {
		name   string
		mutate func(*autoscalingv2.HorizontalPodAutoscaler)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "memory value and pods metric", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			mem := q("512Mi")
			h.Spec.Metrics = []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "rps"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}}},
			}
		}},
		{name: "bad name", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Name = "Web" }, want: []wantErr{invalid("metadata.name")}},
		{name: "minReplicas 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptrTo(int32(0)) },
			want: []wantErr{invalid("spec.minReplicas")}},
		{name: "maxReplicas 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MaxReplicas = 0 }, want: []wantErr{invalid("spec.maxReplicas")}},
		{name: "max below min", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.MinReplicas = ptrTo(int32(5))
			h.Spec.MaxReplicas = 2
		},
			want: []wantErr{invalid("spec.maxReplicas")}},
		{name: "no target kind", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Kind = "" },
			want: []wantErr{required("spec.scaleTargetRef.kind")}},
		{name: "target name with a slash", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.ScaleTargetRef.Name = "a/b" },
			want: []wantErr{invalid("spec.scaleTargetRef.name")}},
		{name: "metric type unknown", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: "Magic"}}
		}, want: []wantErr{notSupported("spec.metrics[0].type")}},
		{name: "metric source missing", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType}}
		}, want: []wantErr{required("spec.metrics[0].resource")}},
		{name: "two metric sources", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			m := cpuMetric(50)
			m.Pods = &autoscalingv2.PodsMetricSource{}
			h.Spec.Metrics = []autoscalingv2.MetricSpec{m}
		}, want: []wantErr{forbidden("spec.metrics[0].pods")}},
		{name: "utilization 0", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics = []autoscalingv2.MetricSpec{cpuMetric(0)}
		},
			want: []wantErr{invalid("spec.metrics[0].resource.target.averageUtilization")}},
		{name: "target type unknown", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			m := cpuMetric(50)
			m.Resource.Target.Type = "Percent"
			h.Spec.Metrics = []autoscalingv2.MetricSpec{m}
		}, want: []wantErr{invalid("spec.metrics[0].resource.target.type")}},
		{name: "no target value", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			m := cpuMetric(50)
			m.Resource.Target.AverageUtilization = nil
			h.Spec.Metrics = []autoscalingv2.MetricSpec{m}
		}, want: []wantErr{required("spec.metrics[0].resource.target.averageUtilization")}},
		{name: "policy period too long", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 3600}},
			}}
		}, want: []wantErr{invalid("spec.behavior.scaleUp.policies[0].periodSeconds")}},
		{name: "select policy unknown", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{SelectPolicy: ptrTo(autoscalingv2.ScalingPolicySelect("Avg"))}}
		}, want: []wantErr{notSupported("spec.behavior.scaleDown.selectPolicy")}},
		{name: "window too long", mutate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptrTo(int32(7200))}}
		}, want: []wantErr{invalid("spec.behavior.scaleDown.stabilizationWindowSeconds")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHPA()
			if tt.mutate != nil {
				tt.mutate(h)
			}
			r := HorizontalPodAutoscalers()
			r.Default(h)
			checkErrs(t, r.Validate(h), tt.want...)
		})
	}
}

func TestHPARow(t *testing.T) {
	h := newHPA()
	HorizontalPodAutoscalers().Default(h)
	h.CreationTimestamp = ago(10 * time.Minute)
	want := []any{"web", "Deployment/web", "cpu: <unknown>/80%", "1", int64(10), int64(0), "10m"}
	if diff := cmp.Diff(want, hpaRow(h, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	avg := resource.MustParse("100m")
	h.Spec.Metrics = append(h.Spec.Metrics,
		autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: &avg}}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: &avg}}})
	h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
		Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(int32(42))}}}}
	if got := hpaRow(h, testNow)[2]; got != "cpu: 42%/80%, <unknown>/100m + 1 more..." {
		t.Errorf("targets %q", got)
	}
}
