package podautoscaler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeMetrics serves fixed CPU usage (millicores) per pod name.
type fakeMetrics struct {
	cpu map[string]int64
	err error
}

func (f *fakeMetrics) PodMetrics(_ context.Context, namespace string, _ labels.Selector) ([]metricsv1beta1.PodMetrics, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []metricsv1beta1.PodMetrics
	for name, v := range f.cpu {
		out = append(out, metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Timestamp:  metav1.NewTime(epoch), Window: metav1.Duration{Duration: 15 * time.Second},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "app", Usage: corev1.ResourceList{
				corev1.ResourceCPU: *resource.NewMilliQuantity(v, resource.DecimalSI), corev1.ResourceMemory: resource.MustParse("10Mi"),
			}}},
		})
	}
	return out, nil
}

// fakeScaler is a Deployment's scale subresource.
type fakeScaler struct {
	replicas  int32
	selector  string
	updateErr error
	updates   []int32
}

func (f *fakeScaler) GetScale(_ context.Context, namespace string, gk schema.GroupKind, name string) (*autoscalingv1.Scale, schema.GroupResource, error) {
	if gk.Kind != "Deployment" {
		return nil, schema.GroupResource{}, errors.New(`no matches for kind "` + gk.Kind + `"`)
	}
	return &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: autoscalingv1.ScaleSpec{Replicas: f.replicas}, Status: autoscalingv1.ScaleStatus{Replicas: f.replicas, Selector: f.selector}}, schema.GroupResource{Group: "apps", Resource: "deployments"}, nil
}

func (f *fakeScaler) UpdateScale(_ context.Context, _ string, _ schema.GroupResource, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	f.replicas = s.Spec.Replicas
	f.updates = append(f.updates, s.Spec.Replicas)
	return s, nil
}

func testHPA(kind string, minR, maxR, target int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: "web"},
			MinReplicas:    &minR, MaxReplicas: maxR,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &target},
			}}},
		},
	}
}

// TestReconcile runs one evaluation of an HPA against a fake clientset,
// metrics and scale, and checks the scale written, status, conditions and
// events.
func TestReconcile(t *testing.T) {
	tests := []struct {
		name       string
		hpa        *autoscalingv2.HorizontalPodAutoscaler
		scaler     *fakeScaler
		pods       []*corev1.Pod
		metrics    *fakeMetrics
		wantScale  int32
		wantErr    bool
		conditions map[autoscalingv2.HorizontalPodAutoscalerConditionType]string // type → status/reason
		event      string
		current    *int32 // status.currentMetrics[0] utilization
	}{
		{
			name: "scale up on cpu", hpa: testHPA("Deployment", 1, 10, 50), scaler: &fakeScaler{replicas: 2, selector: "app=web"},
			pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m")}, metrics: &fakeMetrics{cpu: map[string]int64{"a": 100, "b": 100}},
			wantScale: 4,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
				autoscalingv2.AbleToScale: "True/SucceededRescale", autoscalingv2.ScalingActive: "True/ValidMetricFound", autoscalingv2.ScalingLimited: "False/DesiredWithinRange",
			},
			event:   "Normal SuccessfulRescale New size: 4; reason: cpu resource utilization (percentage of request) above target",
			current: ptrTo(int32(100)),
		},
		{
			name: "on target", hpa: testHPA("Deployment", 1, 10, 50), scaler: &fakeScaler{replicas: 2, selector: "app=web"},
			pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m")}, metrics: &fakeMetrics{cpu: map[string]int64{"a": 52, "b": 50}},
			wantScale: 2,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
				autoscalingv2.AbleToScale: "True/ReadyForNewScale", autoscalingv2.ScalingActive: "True/ValidMetricFound",
			},
			current: ptrTo(int32(51)),
		},
		{
			name: "below min without metrics", hpa: testHPA("Deployment", 3, 10, 50), scaler: &fakeScaler{replicas: 1, selector: "app=web"},
			metrics: &fakeMetrics{err: errors.New("unavailable")}, wantScale: 3,
			event: "Normal SuccessfulRescale New size: 3; reason: Current number of replicas below Spec.MinReplicas",
		},
		{
			name: "above max", hpa: testHPA("Deployment", 1, 2, 50), scaler: &fakeScaler{replicas: 5, selector: "app=web"},
			metrics: &fakeMetrics{}, wantScale: 2,
			event: "Normal SuccessfulRescale New size: 2; reason: Current number of replicas above Spec.MaxReplicas",
		},
		{
			name: "scaled to zero by hand", hpa: testHPA("Deployment", 1, 5, 50), scaler: &fakeScaler{replicas: 0, selector: "app=web"},
			metrics: &fakeMetrics{}, wantScale: 0,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.ScalingActive: "False/ScalingDisabled"},
		},
		{
			name: "metrics unavailable", hpa: testHPA("Deployment", 1, 5, 50), scaler: &fakeScaler{replicas: 2, selector: "app=web"},
			pods: []*corev1.Pod{testPod("a", "100m")}, metrics: &fakeMetrics{err: errors.New("the server is currently unable to handle the request")},
			wantScale: 2, wantErr: true,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
				autoscalingv2.AbleToScale: "True/SucceededGetScale", autoscalingv2.ScalingActive: "False/FailedGetResourceMetric",
			},
			event: "Warning FailedGetResourceMetric failed to get cpu resource metric value",
		},
		{
			name: "unknown target kind", hpa: testHPA("Gadget", 1, 5, 50), scaler: &fakeScaler{replicas: 2, selector: "app=web"},
			metrics: &fakeMetrics{}, wantScale: 2, wantErr: true,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.AbleToScale: "False/FailedGetScale"},
			event:      "Warning FailedGetScale",
		},
		{
			name: "no selector", hpa: testHPA("Deployment", 1, 5, 50), scaler: &fakeScaler{replicas: 2},
			metrics: &fakeMetrics{}, wantScale: 2, wantErr: true,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.ScalingActive: "False/InvalidSelector"},
			event:      "Warning SelectorRequired selector is required",
		},
		{
			name: "rescale refused", hpa: testHPA("Deployment", 1, 10, 50), scaler: &fakeScaler{replicas: 2, selector: "app=web", updateErr: errors.New("conflict")},
			pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m")}, metrics: &fakeMetrics{cpu: map[string]int64{"a": 100, "b": 100}},
			wantScale: 2, wantErr: true,
			conditions: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.AbleToScale: "False/FailedUpdateScale"},
			event:      "Warning FailedRescale New size: 4; reason: cpu resource utilization (percentage of request) above target; error: conflict",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{tt.hpa}
			for _, p := range tt.pods {
				objs = append(objs, p)
			}
			client := fake.NewClientset(objs...)
			factory := informers.NewSharedInformerFactory(client, 0)
			rec := record.NewFakeRecorder(10)
			clk := clocktesting.NewFakeClock(epoch)
			c := New(slog.New(slog.DiscardHandler), client, factory, rec, tt.metrics, tt.scaler, WithClock(clk))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			factory.Start(ctx.Done())
			factory.WaitForCacheSync(ctx.Done())
			// An HPA seen before: no initial recommendation holds it back.
			c.history.recordInitial("default/web", tt.scaler.replicas, epoch.Add(-time.Hour))

			err := c.reconcile(ctx, "default/web", tt.hpa)
			if (err != nil) != tt.wantErr {
				t.Fatalf("reconcile: %v, want error %v", err, tt.wantErr)
			}
			if tt.scaler.replicas != tt.wantScale {
				t.Errorf("scale %d, want %d (updates %v)", tt.scaler.replicas, tt.wantScale, tt.scaler.updates)
			}
			got, err := client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for typ, want := range tt.conditions {
				c := condition(got, typ)
				if s := string(c.Status) + "/" + c.Reason; s != want {
					t.Errorf("condition %s = %s (%s), want %s", typ, s, c.Message, want)
				}
			}
			if tt.current != nil {
				if len(got.Status.CurrentMetrics) != 1 || got.Status.CurrentMetrics[0].Resource == nil ||
					*got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != *tt.current {
					t.Errorf("currentMetrics %+v, want utilization %d", got.Status.CurrentMetrics, *tt.current)
				}
			}
			if !tt.wantErr && (got.Status.CurrentReplicas == 0) != (tt.scaler.updates == nil && tt.wantScale == 0) {
				t.Errorf("status %+v", got.Status)
			}
			if tt.scaler.updates != nil && (got.Status.LastScaleTime == nil || got.Status.DesiredReplicas != tt.wantScale) {
				t.Errorf("after a rescale: status %+v", got.Status)
			}
			if tt.event != "" {
				select {
				case e := <-rec.Events:
					if !strings.HasPrefix(e, tt.event) {
						t.Errorf("event %q, want %q", e, tt.event)
					}
				default:
					t.Errorf("no event, want %q", tt.event)
				}
			}
		})
	}
}
