package replicaset

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type podOpt func(*v1.Pod)

func mkPod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1.PodSpec{NodeName: "node-a"},
		Status:     v1.PodStatus{Phase: v1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func unscheduled(p *v1.Pod)       { p.Spec.NodeName = "" }
func onNode(n string) podOpt      { return func(p *v1.Pod) { p.Spec.NodeName = n } }
func phase(ph v1.PodPhase) podOpt { return func(p *v1.Pod) { p.Status.Phase = ph } }
func created(d time.Duration) podOpt {
	return func(p *v1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}
func cost(c string) podOpt {
	return func(p *v1.Pod) { p.Annotations = map[string]string{podDeletionCostAnnotation: c} }
}
func restarts(n int32) podOpt {
	return func(p *v1.Pod) { p.Status.ContainerStatuses = []v1.ContainerStatus{{RestartCount: n}} }
}
func readyAt(d time.Duration) podOpt {
	return func(p *v1.Pod) {
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(d))}}
	}
}

func TestPodsToDelete(t *testing.T) {
	tests := []struct {
		name    string
		pods    []*v1.Pod
		related []*v1.Pod
		n       int
		want    []string
	}{
		{
			name: "unscheduled before scheduled",
			pods: []*v1.Pod{mkPod("scheduled", readyAt(0)), mkPod("unscheduled", unscheduled, phase(v1.PodPending))},
			n:    1, want: []string{"unscheduled"},
		},
		{
			name: "pending < unknown < running",
			pods: []*v1.Pod{mkPod("running"), mkPod("unknown", phase(v1.PodUnknown)), mkPod("pending", phase(v1.PodPending))},
			n:    2, want: []string{"pending", "unknown"},
		},
		{
			name: "not ready before ready",
			pods: []*v1.Pod{mkPod("ready", readyAt(0)), mkPod("not-ready")},
			n:    1, want: []string{"not-ready"},
		},
		{
			name: "lower deletion cost first",
			pods: []*v1.Pod{mkPod("expensive", readyAt(0), cost("100")), mkPod("cheap", readyAt(0), cost("-5")), mkPod("default", readyAt(0))},
			n:    2, want: []string{"cheap", "default"},
		},
		{
			name:    "doubled-up node first",
			pods:    []*v1.Pod{mkPod("alone", readyAt(0), onNode("b")), mkPod("crowded", readyAt(0), onNode("a"))},
			related: []*v1.Pod{mkPod("x", onNode("a")), mkPod("y", onNode("a")), mkPod("z", onNode("b"))},
			n:       1, want: []string{"crowded"},
		},
		{
			name: "ready for less time first",
			pods: []*v1.Pod{mkPod("old-ready", readyAt(time.Minute)), mkPod("new-ready", readyAt(time.Hour))},
			n:    1, want: []string{"new-ready"},
		},
		{
			name: "more restarts first",
			pods: []*v1.Pod{mkPod("stable", readyAt(0), restarts(0)), mkPod("flaky", readyAt(0), restarts(7))},
			n:    1, want: []string{"flaky"},
		},
		{
			name: "newer first",
			pods: []*v1.Pod{mkPod("older", readyAt(0), created(time.Minute)), mkPod("newer", readyAt(0), created(time.Hour))},
			n:    1, want: []string{"newer"},
		},
		{
			name: "all of them",
			pods: []*v1.Pod{mkPod("a"), mkPod("b")},
			n:    5, want: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range podsToDelete(tt.pods, tt.related, tt.n) {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("podsToDelete (-want +got):\n%s", diff)
			}
		})
	}
}
