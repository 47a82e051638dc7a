package deployment

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetNewReplicaSetAnnotations(t *testing.T) {
	d := rolling(3, i(1), i(0))
	d.Annotations = map[string]string{
		"kubernetes.io/change-cause":   "kubectl set image",
		v1.LastAppliedConfigAnnotation: "{...}",
		annRevision:                    "7",
		"team":                         "web",
	}
	tests := []struct {
		name        string
		rsAnn       map[string]string
		newRevision string
		exists      bool
		want        map[string]string
		wantChanged bool
	}{
		{
			name: "new replicaset", newRevision: "4", exists: false,
			want: map[string]string{
				"kubernetes.io/change-cause": "kubectl set image", "team": "web",
				annRevision: "4", annDesiredReplicas: "3", annMaxReplicas: "4",
			},
			wantChanged: true,
		},
		{
			name:        "up to date",
			rsAnn:       map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "4"},
			newRevision: "4", exists: true,
			want:        map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "4"},
			wantChanged: false,
		},
		{
			name:        "old replicaset becomes new again: history remembers",
			rsAnn:       map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "2"},
			newRevision: "5", exists: true,
			want:        map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "5", annRevisionHistory: "2"},
			wantChanged: true,
		},
		{
			name:        "history grows",
			rsAnn:       map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "3", annRevisionHistory: "1"},
			newRevision: "6", exists: true,
			want:        map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "6", annRevisionHistory: "1,3"},
			wantChanged: true,
		},
		{
			name:        "revision never goes down",
			rsAnn:       map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "9"},
			newRevision: "5", exists: true,
			want:        map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "9"},
			wantChanged: false,
		},
		{
			name:        "change-cause follows the deployment",
			rsAnn:       map[string]string{"kubernetes.io/change-cause": "older", "team": "web", annRevision: "4"},
			newRevision: "4", exists: true,
			want:        map[string]string{"kubernetes.io/change-cause": "kubectl set image", "team": "web", annRevision: "4"},
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: tt.rsAnn}}
			changed := setNewReplicaSetAnnotations(d, rs, tt.newRevision, tt.exists, maxRevHistoryLengthInChars)
			if diff := cmp.Diff(tt.want, rs.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

func TestAppendRevisionHistory(t *testing.T) {
	tests := []struct {
		history, rev string
		limit        int
		want         string
	}{
		{"", "1", 10, "1"},
		{"1,2", "3", 10, "1,2,3"},
		{"1,2,3", "4", 5, "2,3,4"},
		{"1,2,3", "4", 7, "1,2,3,4"},
		{"1", "12345", 3, "1"},
		{strings.Repeat("9,", 5) + "9", "10", 8, "9,9,9,10"},
	}
	for _, tt := range tests {
		t.Run(tt.history+"+"+tt.rev, func(t *testing.T) {
			if got := appendRevisionHistory(tt.history, tt.rev, tt.limit); got != tt.want {
				t.Errorf("appendRevisionHistory = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMaxRevision(t *testing.T) {
	rev := func(r string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annRevision: r}}}
	}
	tests := []struct {
		name string
		rss  []*appsv1.ReplicaSet
		want int64
	}{
		{"none", nil, 0},
		{"highest", []*appsv1.ReplicaSet{rev("3"), rev("11"), rev("7")}, 11},
		{"unparsable skipped", []*appsv1.ReplicaSet{rev("x"), rev("2")}, 2},
		{"nil and unannotated", []*appsv1.ReplicaSet{nil, {}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxRevision(tt.rss); got != tt.want {
				t.Errorf("maxRevision = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFindNewReplicaSetIgnoresHash(t *testing.T) {
	d := rolling(3, i(1), i(0))
	d.Spec.Template = *nginxTemplate()
	withHash := func(name, image string, age int) *appsv1.ReplicaSet {
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, UID: typesUID(name), CreationTimestamp: metav1.NewTime(t0.Add(timeMinutes(age)))}}
		rs.Spec.Template = *nginxTemplate()
		rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "h-" + name
		rs.Spec.Template.Spec.Containers[0].Image = image
		return rs
	}
	rss := []*appsv1.ReplicaSet{
		withHash("other", "nginx:1.16", 0),
		withHash("match-newer", "nginx:1.14.2", 2),
		withHash("match-older", "nginx:1.14.2", 1),
	}
	got := findNewReplicaSet(d, rss)
	if got == nil || got.Name != "match-older" {
		t.Fatalf("findNewReplicaSet = %v, want match-older", got)
	}
	var old []string
	for _, rs := range findOldReplicaSets(d, rss) {
		old = append(old, rs.Name)
	}
	if diff := cmp.Diff([]string{"other", "match-newer"}, old); diff != "" {
		t.Errorf("old replicasets (-want +got):\n%s", diff)
	}
}

func timeMinutes(n int) time.Duration { return time.Duration(n) * time.Minute }
