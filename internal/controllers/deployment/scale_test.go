package deployment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// sized returns an active ReplicaSet created at t0+age, sized for a
// Deployment of maxReplicas (its max-replicas annotation; "" for none).
func sized(name string, replicas int32, maxReplicas string, age time.Duration) *appsv1.ReplicaSet {
	rs := rsWith(name, replicas, replicas)
	rs.CreationTimestamp = metav1.NewTime(t0.Add(age))
	if maxReplicas != "" {
		rs.Annotations = map[string]string{annMaxReplicas: maxReplicas}
	}
	return rs
}

func TestProportionalSizes(t *testing.T) {
	tests := []struct {
		name           string
		d              *appsv1.Deployment
		statusReplicas int32
		rss            []*appsv1.ReplicaSet
		want           map[string]int32
	}{
		{
			name: "scale up mid-rollout keeps the proportions",
			d:    rolling(20, i(3), i(2)),
			rss:  []*appsv1.ReplicaSet{sized("old", 8, "13", 0), sized("new", 5, "13", time.Minute)},
			want: map[string]int32{"old": 14, "new": 9},
		},
		{
			name: "scale down mid-rollout",
			d:    rolling(5, i(3), i(2)),
			rss:  []*appsv1.ReplicaSet{sized("old", 8, "13", 0), sized("new", 5, "13", time.Minute)},
			want: map[string]int32{"old": 5, "new": 3},
		},
		{
			name: "scale to zero",
			d:    rolling(0, i(3), i(2)),
			rss:  []*appsv1.ReplicaSet{sized("old", 8, "13", 0), sized("new", 5, "13", time.Minute)},
			want: map[string]int32{"old": 0, "new": 0},
		},
		{
			name: "rounding leftover goes to the largest, newest when growing",
			d:    rolling(4, i(0), i(1)),
			rss:  []*appsv1.ReplicaSet{sized("a", 1, "3", 0), sized("b", 1, "3", time.Minute), sized("c", 1, "3", 2*time.Minute)},
			want: map[string]int32{"a": 1, "b": 1, "c": 2},
		},
		{
			name: "rounding leftover taken from the largest, oldest when shrinking",
			d:    rolling(2, i(0), i(1)),
			rss:  []*appsv1.ReplicaSet{sized("a", 1, "3", 0), sized("b", 1, "3", time.Minute), sized("c", 1, "3", 2*time.Minute)},
			want: map[string]int32{"a": 0, "b": 1, "c": 1},
		},
		{
			name:           "without annotations the current size is the base",
			d:              rolling(10, i(0), i(1)),
			statusReplicas: 5,
			rss:            []*appsv1.ReplicaSet{sized("old", 3, "", 0), sized("new", 2, "", time.Minute)},
			want:           map[string]int32{"old": 6, "new": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.Status.Replicas = tt.statusReplicas
			got := proportionalSizes(tt.d, tt.rss)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sizes (-want +got):\n%s", diff)
			}
			var total int32
			for _, n := range got {
				total += n
			}
			if limit := *tt.d.Spec.Replicas + maxSurge(tt.d); total > limit {
				t.Errorf("total %d exceeds replicas+maxSurge %d", total, limit)
			}
		})
	}
}
