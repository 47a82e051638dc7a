package controllerutil

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func readyPod(status v1.ConditionStatus, since time.Time) *v1.Pod {
	return &v1.Pod{Status: v1.PodStatus{Conditions: []v1.PodCondition{{
		Type: v1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(since),
	}}}}
}

func TestPodAvailable(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		pod       *v1.Pod
		minReady  int32
		wantAvail bool
		wantReady bool
		wantLeft  time.Duration
	}{
		{"no condition", &v1.Pod{}, 0, false, false, 0},
		{"not ready", readyPod(v1.ConditionFalse, now.Add(-time.Hour)), 0, false, false, 0},
		{"ready, no minReadySeconds", readyPod(v1.ConditionTrue, now), 0, true, true, 0},
		{"ready long enough", readyPod(v1.ConditionTrue, now.Add(-11*time.Second)), 10, true, true, 0},
		{"ready exactly minReadySeconds ago is not yet available", readyPod(v1.ConditionTrue, now.Add(-10*time.Second)), 10, false, true, time.Nanosecond},
		{"ready 4s of 10s", readyPod(v1.ConditionTrue, now.Add(-4*time.Second)), 10, false, true, 6*time.Second + time.Nanosecond},
		{"ready without transition time", readyPod(v1.ConditionTrue, time.Time{}), 10, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPodAvailable(tt.pod, tt.minReady, now); got != tt.wantAvail {
				t.Errorf("IsPodAvailable = %v, want %v", got, tt.wantAvail)
			}
			left, ok := PodAvailableIn(tt.pod, tt.minReady, now)
			if ok != tt.wantReady || left != tt.wantLeft {
				t.Errorf("PodAvailableIn = %v, %v, want %v, %v", left, ok, tt.wantLeft, tt.wantReady)
			}
		})
	}
}

func TestFilterActivePods(t *testing.T) {
	deleting := metav1.Now()
	pods := []*v1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "running"}, Status: v1.PodStatus{Phase: v1.PodRunning}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Status: v1.PodStatus{Phase: v1.PodPending}},
		{ObjectMeta: metav1.ObjectMeta{Name: "succeeded"}, Status: v1.PodStatus{Phase: v1.PodSucceeded}},
		{ObjectMeta: metav1.ObjectMeta{Name: "failed"}, Status: v1.PodStatus{Phase: v1.PodFailed}},
		{ObjectMeta: metav1.ObjectMeta{Name: "deleting", DeletionTimestamp: &deleting}, Status: v1.PodStatus{Phase: v1.PodRunning}},
	}
	var got []string
	for _, p := range FilterActivePods(pods) {
		got = append(got, p.Name)
	}
	if len(got) != 2 || got[0] != "running" || got[1] != "pending" {
		t.Errorf("FilterActivePods = %v, want [running pending]", got)
	}
}
