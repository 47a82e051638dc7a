package replicaset

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCalculateStatus(t *testing.T) {
	now := t0.Add(time.Hour)
	rs := func(replicas, minReady int32, conds ...appsv1.ReplicaSetCondition) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{
			Spec: appsv1.ReplicaSetSpec{
				Replicas:        &replicas,
				MinReadySeconds: minReady,
				Template:        v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}},
			},
			Status: appsv1.ReplicaSetStatus{Conditions: conds},
		}
	}
	labelled := func(p *v1.Pod) { p.Labels = map[string]string{"app": "web", "tier": "front"} }
	failure := appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: v1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}
	tests := []struct {
		name      string
		rs        *appsv1.ReplicaSet
		pods      []*v1.Pod
		err       error
		want      appsv1.ReplicaSetStatus
		wantAfter time.Duration
	}{
		{
			name: "counts",
			rs:   rs(3, 0),
			pods: []*v1.Pod{mkPod("a", labelled, readyAt(0)), mkPod("b", readyAt(0)), mkPod("c", labelled)},
			want: appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2},
		},
		{
			name: "minReadySeconds holds back recently ready pods",
			rs:   rs(3, 60),
			pods: []*v1.Pod{
				mkPod("long", labelled, readyAt(0)),
				mkPod("recent", labelled, readyAt(time.Hour-20*time.Second)),
				mkPod("very-recent", labelled, readyAt(time.Hour-5*time.Second)),
			},
			want:      appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 1},
			wantAfter: 40*time.Second + time.Nanosecond,
		},
		{
			name: "create failure sets ReplicaFailure",
			rs:   rs(2, 0),
			pods: []*v1.Pod{mkPod("a", labelled)},
			err:  errors.New("quota"),
			want: appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, Conditions: []appsv1.ReplicaSetCondition{failure}},
		},
		{
			name: "success clears ReplicaFailure",
			rs:   rs(1, 0, failure),
			pods: []*v1.Pod{mkPod("a", labelled)},
			want: appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, after := calculateStatus(tt.rs, tt.pods, tt.err, now)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(appsv1.ReplicaSetCondition{}, "LastTransitionTime"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if after != tt.wantAfter {
				t.Errorf("available in %v, want %v", after, tt.wantAfter)
			}
		})
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		name      string
		count     int
		failFrom  int // calls from this one on (1-based) fail; 0: none does
		wantCalls int
		wantOK    int
	}{
		{"all succeed", 10, 0, 10, 10},
		{"first fails: nothing more is tried", 10, 1, 1, 0},
		{"third batch (calls 4-7) fails", 10, 4, 7, 3},
		{"last batch is the remainder", 5, 0, 5, 5},
		{"zero", 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			ok, err := slowStartBatch(tt.count, 1, func() error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if tt.failFrom > 0 && calls >= tt.failFrom {
					return errors.New("boom")
				}
				return nil
			})
			if calls != tt.wantCalls || ok != tt.wantOK || (err != nil) != (tt.failFrom > 0) {
				t.Errorf("slowStartBatch: %d calls, %d ok, err %v; want %d calls, %d ok", calls, ok, err, tt.wantCalls, tt.wantOK)
			}
		})
	}
}
