package resources

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func hpaRef() autoscalingv2.CrossVersionObjectReference {
	return autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
}

func TestHPAFromV1(t *testing.T) {
	meta := func(annotations map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: annotations}
	}
	v1Ref := autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	tests := []struct {
		name string
		in   *autoscalingv1.HorizontalPodAutoscaler
		want *autoscalingv2.HorizontalPodAutoscaler
	}{{
		// What kubectl autoscale --max 3 --cpu-percent 50 sends.
		name: "cpu target",
		in: &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta(nil), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: v1Ref, MaxReplicas: 3, TargetCPUUtilizationPercentage: ptrTo(int32(50))}},
		want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta(nil), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: hpaRef(), MaxReplicas: 3, Metrics: []autoscalingv2.MetricSpec{cpuUtilization(50)}}},
	}, {
		name: "no target: v1's implicit 80%",
		in: &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta(map[string]string{"team": "a"}), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: v1Ref, MinReplicas: ptrTo(int32(2)), MaxReplicas: 3},
			Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 2, CurrentCPUUtilizationPercentage: ptrTo(int32(31))}},
		want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta(map[string]string{"team": "a"}), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: hpaRef(), MinReplicas: ptrTo(int32(2)), MaxReplicas: 3, Metrics: []autoscalingv2.MetricSpec{cpuUtilization(80)}},
			Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 2, CurrentMetrics: []autoscalingv2.MetricStatus{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
					Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(int32(31))}},
			}}}},
	}, {
		// The annotations give back what v1 has no field for, the
		// other metrics first; they are not kept.
		name: "annotations",
		in: &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta(map[string]string{
			"team":                     "a",
			hpaMetricSpecsAnnotation:   `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]`,
			hpaBehaviorSpecsAnnotation: `{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Min","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":30}],"Tolerance":"50m"}}`,
			hpaConditionsAnnotation:    `[{"type":"AbleToScale","status":"True","lastTransitionTime":null,"reason":"ReadyForNewScale"}]`,
			hpaToleranceUpAnnotation:   "1",
		}), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: v1Ref, MaxReplicas: 5, TargetCPUUtilizationPercentage: ptrTo(int32(70))}},
		want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta(map[string]string{"team": "a"}), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: hpaRef(), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.PodsMetricSourceType,
				Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(resource.MustParse("10"))}},
			}, cpuUtilization(70)},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptrTo(int32(60)), SelectPolicy: ptrTo(autoscalingv2.MinChangePolicySelect),
				Policies:  []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 30}},
				Tolerance: ptrTo(resource.MustParse("50m")),
			}}},
			Status: autoscalingv2.HorizontalPodAutoscalerStatus{Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{
				{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "ReadyForNewScale"}}}},
	}, {
		name: "malformed annotations are ignored",
		in: &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: meta(map[string]string{
			hpaMetricSpecsAnnotation: "{", hpaBehaviorSpecsAnnotation: "[]", hpaMetricStatusesAnnotation: "x",
		}), Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: v1Ref, MaxReplicas: 1}},
		want: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta(nil), Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: hpaRef(), MaxReplicas: 1, Metrics: []autoscalingv2.MetricSpec{cpuUtilization(80)}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hpaFromV1(tt.in)
			if !equality.Semantic.DeepEqual(tt.want, got) {
				t.Errorf("(-want +got):\n%s", cmp.Diff(tt.want, got, quantityComparer))
			}
		})
	}
}

func TestHPAToV1(t *testing.T) {
	in := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{
			"team": "a", hpaConditionsAnnotation: "stale", // replaced, as upstream
		}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: hpaRef(), MinReplicas: ptrTo(int32(1)), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{cpuUtilization(60), {
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptrTo(resource.MustParse("100Mi"))}},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptrTo(int32(0)), SelectPolicy: ptrTo(autoscalingv2.MaxChangePolicySelect),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}},
			}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			CurrentReplicas: 2, DesiredReplicas: 3,
			CurrentMetrics: []autoscalingv2.MetricStatus{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
					Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptrTo(int32(75)), AverageValue: ptrTo(resource.MustParse("150m"))}},
			}},
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: "FailedGetResourceMetric"}},
		},
	}
	got, err := hpaToV1(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{
			"team":                      "a",
			hpaMetricSpecsAnnotation:    `[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]`,
			hpaMetricStatusesAnnotation: `[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":75,"currentAverageValue":"150m"}}]`,
			// Upstream marshals its internal type: Go field names, nulls.
			hpaBehaviorSpecsAnnotation: `{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":null}`,
			hpaConditionsAnnotation:    `[{"type":"ScalingActive","status":"False","lastTransitionTime":null,"reason":"FailedGetResourceMetric"}]`,
		}},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptrTo(int32(1)), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptrTo(int32(60)),
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 3, CurrentCPUUtilizationPercentage: ptrTo(int32(75))},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if in.Annotations[hpaConditionsAnnotation] != "stale" {
		t.Error("hpaToV1 changed its argument")
	}

	// Written back as read, the v1 object is the v2 one again, but for
	// the CPU target, which comes after the other metrics, as upstream.
	back := hpaFromV1(got)
	wantBack := in.DeepCopy()
	wantBack.Annotations = map[string]string{"team": "a"}
	wantBack.Spec.Metrics = []autoscalingv2.MetricSpec{in.Spec.Metrics[1], in.Spec.Metrics[0]}
	if !equality.Semantic.DeepEqual(wantBack, back) {
		t.Errorf("round trip (-want +got):\n%s", cmp.Diff(wantBack, back, quantityComparer))
	}
}

// TestHPAV1RoundTrip converts random autoscalers of every shape v1 can
// carry (as upstream's fuzzer makes them: the CPU target last, targets of
// the types the v1 fields imply) to autoscaling/v1 and back.
func TestHPAV1RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		in := randomHPA(r)
		v1, err := hpaToV1(in)
		if err != nil {
			t.Fatal(err)
		}
		back := hpaFromV1(v1)
		if !equality.Semantic.DeepEqual(in, back) {
			t.Fatalf("%d: v2 -> v1 -> v2 changed it:\n%s", i, cmp.Diff(in, back, quantityComparer))
		}
		again, err := hpaToV1(back)
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(v1, again) {
			t.Fatalf("%d: v1 -> v2 -> v1 changed it:\n%s", i, cmp.Diff(v1, again, quantityComparer))
		}
	}
}

func randomHPA(r *rand.Rand) *autoscalingv2.HorizontalPodAutoscaler {
	str := func() string { return fmt.Sprintf("s%d", r.IntN(1000)) }
	maybe := func() bool { return r.IntN(2) == 0 }
	i32 := func() *int32 { return ptrTo(r.Int32N(1000)) }
	qty := func() *resource.Quantity { return ptrTo(*resource.NewMilliQuantity(r.Int64N(1e6), resource.DecimalSI)) }
	sel := func() *metav1.LabelSelector {
		if maybe() {
			return nil
		}
		return &metav1.LabelSelector{MatchLabels: map[string]string{str(): str()}}
	}
	ref := func() autoscalingv2.CrossVersionObjectReference {
		return autoscalingv2.CrossVersionObjectReference{Kind: str(), Name: str(), APIVersion: str()}
	}
	id := func() autoscalingv2.MetricIdentifier {
		return autoscalingv2.MetricIdentifier{Name: str(), Selector: sel()}
	}
	resourceTarget := func() autoscalingv2.MetricTarget {
		if maybe() {
			return autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: i32()}
		}
		return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty()}
	}
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: str(), Namespace: str(), Labels: map[string]string{str(): str()}},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref(), MaxReplicas: r.Int32N(100)},
	}
	if maybe() {
		h.Annotations = map[string]string{str(): str()}
	}
	if maybe() {
		h.Spec.MinReplicas = i32()
	}
	for range r.IntN(4) {
		var m autoscalingv2.MetricSpec
		switch r.IntN(5) {
		case 0:
			t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: qty()}
			if maybe() {
				t.Type, t.AverageValue = autoscalingv2.AverageValueMetricType, qty()
			}
			m = autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType,
				Object: &autoscalingv2.ObjectMetricSource{DescribedObject: ref(), Metric: id(), Target: t}}
		case 1:
			m = autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
				Metric: id(), Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty()}}}
		case 2:
			// Memory: a CPU utilization target is v1's own field.
			m = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceMemory, Target: resourceTarget()}}
		case 3:
			m = autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
				Name: corev1.ResourceCPU, Container: str(), Target: resourceTarget()}}
		case 4:
			t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty()}
			if maybe() {
				t = autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: qty(), AverageValue: t.AverageValue}
			}
			m = autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: id(), Target: t}}
		}
		h.Spec.Metrics = append(h.Spec.Metrics, m)
	}
	if len(h.Spec.Metrics) == 0 || maybe() {
		h.Spec.Metrics = append(h.Spec.Metrics, cpuUtilization(*i32()))
	}
	if maybe() {
		rules := func() *autoscalingv2.HPAScalingRules {
			if maybe() {
				return nil
			}
			rs := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: i32(), SelectPolicy: ptrTo(autoscalingv2.MaxChangePolicySelect)}
			for range r.IntN(3) {
				rs.Policies = append(rs.Policies, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: r.Int32N(100), PeriodSeconds: r.Int32N(100)})
			}
			if maybe() {
				rs.Tolerance = qty()
			}
			return rs
		}
		h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rules(), ScaleDown: rules()}
		if h.Spec.Behavior.ScaleUp == nil && h.Spec.Behavior.ScaleDown == nil {
			h.Spec.Behavior = nil // an empty behavior is none, in v1's annotation
		}
	}
	st := &h.Status
	st.CurrentReplicas, st.DesiredReplicas = r.Int32N(100), r.Int32N(100)
	if maybe() {
		st.ObservedGeneration = ptrTo(r.Int64N(100))
		st.LastScaleTime = ptrTo(metav1.Unix(r.Int64N(1e9), 0))
	}
	for range r.IntN(3) {
		var m autoscalingv2.MetricStatus
		value := func() autoscalingv2.MetricValueStatus {
			return autoscalingv2.MetricValueStatus{AverageValue: qty(), AverageUtilization: i32()}
		}
		switch r.IntN(5) {
		case 0:
			m = autoscalingv2.MetricStatus{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{
				DescribedObject: ref(), Metric: id(), Current: autoscalingv2.MetricValueStatus{Value: qty(), AverageValue: qty()}}}
		case 1:
			m = autoscalingv2.MetricStatus{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
				Metric: id(), Current: autoscalingv2.MetricValueStatus{AverageValue: qty()}}}
		case 2:
			m = autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: value()}}
		case 3:
			m = autoscalingv2.MetricStatus{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{
				Name: corev1.ResourceMemory, Container: str(), Current: value()}}
		case 4:
			m = autoscalingv2.MetricStatus{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
				Metric: id(), Current: autoscalingv2.MetricValueStatus{Value: qty()}}}
		}
		st.CurrentMetrics = append(st.CurrentMetrics, m)
	}
	for range r.IntN(3) {
		st.Conditions = append(st.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
			Type: autoscalingv2.HorizontalPodAutoscalerConditionType(str()), Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.Unix(r.Int64N(1e9), 0), Reason: str(), Message: str(), ObservedGeneration: maybeInt64(r),
		})
	}
	return h
}

func maybeInt64(r *rand.Rand) *int64 {
	if r.IntN(2) == 0 {
		return nil
	}
	return ptrTo(r.Int64N(100))
}

func TestHPARoundTripAnnotationsNotStored(t *testing.T) {
	h := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		hpaMetricSpecsAnnotation: "[]", hpaToleranceDownAnnotation: "1", "team": "a",
	}}}
	HorizontalPodAutoscalers().PrepareForCreate(h)
	if diff := cmp.Diff(map[string]string{"team": "a"}, h.Annotations); diff != "" {
		t.Errorf("after create (-want +got):\n%s", diff)
	}
	h.Annotations[hpaConditionsAnnotation] = "[]"
	HorizontalPodAutoscalers().PrepareForUpdate(h, h.DeepCopy())
	if diff := cmp.Diff(map[string]string{"team": "a"}, h.Annotations); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
}
