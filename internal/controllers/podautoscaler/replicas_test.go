package podautoscaler

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var epoch = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// testPod is a pod requesting cpuRequest (and 100Mi), started long ago
// and ready, unless changed by opts.
func testPod(name, cpuRequest string, opts ...func(*corev1.Pod)) *corev1.Pod {
	start := metav1.NewTime(epoch.Add(-time.Hour))
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuRequest), corev1.ResourceMemory: resource.MustParse("100Mi")},
		}}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, StartTime: &start,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: start}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func pending(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }

func notReady(p *corev1.Pod) {
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	p.Status.Conditions[0].LastTransitionTime = *p.Status.StartTime
}

// justStarted: started 10 s ago and ready 5 s ago, within the CPU
// initialization period; its sample's window reaches before readiness.
func justStarted(p *corev1.Pod) {
	start := metav1.NewTime(epoch.Add(-10 * time.Second))
	p.Status.StartTime = &start
	p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(epoch.Add(-5 * time.Second))
}

func deleted(p *corev1.Pod) { now := metav1.NewTime(epoch); p.DeletionTimestamp = &now }

func noRequest(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = nil }

func usage(milli ...int64) podMetrics {
	m := podMetrics{}
	for i, v := range milli {
		if v >= 0 {
			m[string(rune('a'+i))] = podMetric{timestamp: epoch, window: 15 * time.Second, value: v}
		}
	}
	return m
}

func TestUtilizationReplicas(t *testing.T) {
	tests := []struct {
		name    string
		current int32
		target  int32
		pods    []*corev1.Pod
		metrics podMetrics
		want    int32
		util    int32
		wantErr string
	}{
		{name: "scale up", current: 2, target: 50, pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m")},
			metrics: usage(100, 100), want: 4, util: 100},
		{name: "scale down", current: 4, target: 50, pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m"), testPod("c", "100m"), testPod("d", "100m")},
			metrics: usage(10, 10, 10, 10), want: 1, util: 10},
		{name: "within tolerance keeps the count", current: 3, target: 50, pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m"), testPod("c", "100m")},
			metrics: usage(54, 54, 54), want: 3, util: 54},
		{name: "just outside tolerance moves", current: 3, target: 50, pods: []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m"), testPod("c", "100m")},
			metrics: usage(56, 56, 56), want: 4, util: 56},
		{name: "missing pod counts as its whole request on a scale-down", current: 3, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m"), testPod("c", "100m")},
			metrics: usage(10, 10, -1), want: 3, util: 10},
		{name: "missing pod counts as zero on a scale-up", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m")},
			metrics: usage(200, -1), want: 4, util: 200},
		{name: "pending pods count as zero on a scale-up", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m", pending)},
			metrics: usage(100, -1), want: 2, util: 100},
		{name: "unready pod is left out of a scale-up's evidence", current: 3, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m"), testPod("c", "100m", notReady)},
			metrics: usage(150, 150, 900), want: 6, util: 150},
		// b's 1000m is left out and counted as 0 in the scale-up: (100+0)/200 is on target.
		{name: "a sample taken during start-up is not trusted", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m", justStarted)},
			metrics: usage(100, 1000), want: 2, util: 100},
		{name: "deleted pods are ignored", current: 2, target: 50,
			pods:    []*corev1.Pod{testPod("a", "100m"), testPod("b", "100m", deleted)},
			metrics: usage(25, 1000), want: 1, util: 25},
		{name: "no pods", current: 1, target: 50, metrics: usage(10), wantErr: "no pods returned by selector"},
		{name: "no request", current: 1, target: 50, pods: []*corev1.Pod{testPod("a", "100m", noRequest)}, metrics: usage(10),
			wantErr: "missing request for cpu in container app of Pod a"},
		{name: "no metrics for any ready pod", current: 1, target: 50, pods: []*corev1.Pod{testPod("a", "100m", pending)}, metrics: usage(-1),
			wantErr: "did not receive metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &calculator{cpuInitializationPeriod: DefaultCPUInitializationPeriod, delayOfInitialReadiness: DefaultInitialReadinessDelay, now: func() time.Time { return epoch }}
			got, util, _, err := c.utilizationReplicas(tt.current, tt.target, tolerances{0.1, 0.1}, corev1.ResourceCPU, "", tt.pods, tt.metrics)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || util != tt.util {
				t.Errorf("replicas %d at %d%%, want %d at %d%%", got, util, tt.want, tt.util)
			}
		})
	}
}

func TestAverageValueReplicas(t *testing.T) {
	tests := []struct {
		name    string
		current int32
		target  int64 // milli
		pods    []*corev1.Pod
		metrics podMetrics
		want    int32
		avg     int64
	}{
		{name: "memory twice the target", current: 2, target: 100 << 20 * 1000,
			pods: []*corev1.Pod{testPod("a", "1"), testPod("b", "1")}, metrics: usage(200<<20*1000, 200<<20*1000), want: 4, avg: 200 << 20 * 1000},
		{name: "within tolerance", current: 2, target: 1000, pods: []*corev1.Pod{testPod("a", "1"), testPod("b", "1")},
			metrics: usage(1050, 950), want: 2, avg: 1000},
		{name: "missing pod fills in the target on a scale-down", current: 3, target: 1000,
			pods:    []*corev1.Pod{testPod("a", "1"), testPod("b", "1"), testPod("c", "1")},
			metrics: usage(100, 100, -1), want: 2, avg: 100}, // (100+100+1000)/3 is 40% of the target
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &calculator{cpuInitializationPeriod: DefaultCPUInitializationPeriod, delayOfInitialReadiness: DefaultInitialReadinessDelay, now: func() time.Time { return epoch }}
			got, avg, err := c.averageValueReplicas(tt.current, tt.target, tolerances{0.1, 0.1}, corev1.ResourceMemory, tt.pods, tt.metrics)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || avg != tt.avg {
				t.Errorf("replicas %d at average %d, want %d at %d", got, avg, tt.want, tt.avg)
			}
		})
	}
}
