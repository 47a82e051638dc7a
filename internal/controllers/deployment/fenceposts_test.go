package deployment

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func rolling(replicas int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
		},
	}
	return d
}

func recreateD(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas: &replicas,
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
	}}
}

func rsWith(name string, replicas, available int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: typesUID("uid-" + name)},
		Spec:       appsv1.ReplicaSetSpec{Replicas: &replicas},
		Status:     appsv1.ReplicaSetStatus{Replicas: replicas, AvailableReplicas: available},
	}
}

var (
	i   = intstr.FromInt32
	pct = intstr.FromString
)

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		name                      string
		surge, unavailable        intstr.IntOrString
		desired                   int32
		wantSurge, wantUnavailble int32
		wantErr                   bool
	}{
		{"ints", i(3), i(2), 10, 3, 2, false},
		{"25% of 10: surge rounds up, unavailable down", pct("25%"), pct("25%"), 10, 3, 2, false},
		{"25% of 1", pct("25%"), pct("25%"), 1, 1, 0, false},
		{"25% of 3", pct("25%"), pct("25%"), 3, 1, 0, false},
		{"both round to zero: unavailable becomes 1", pct("0%"), pct("1%"), 2, 0, 1, false},
		{"surge 1%, unavailable 25% of 2", pct("1%"), pct("25%"), 2, 1, 0, false},
		{"both zero ints", i(0), i(0), 5, 0, 1, false},
		{"100%", pct("100%"), pct("100%"), 4, 4, 4, false},
		{"zero replicas", pct("25%"), pct("25%"), 0, 0, 1, false},
		{"bad percentage", pct("abc"), i(1), 3, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, u, err := resolveFenceposts(&tt.surge, &tt.unavailable, tt.desired)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (s != tt.wantSurge || u != tt.wantUnavailble) {
				t.Errorf("resolveFenceposts = %d, %d; want %d, %d", s, u, tt.wantSurge, tt.wantUnavailble)
			}
		})
	}
}

func TestMaxSurgeMaxUnavailable(t *testing.T) {
	tests := []struct {
		name                string
		d                   *appsv1.Deployment
		wantSurge, wantUnav int32
	}{
		{"rolling 25%/25% of 10", rolling(10, pct("25%"), pct("25%")), 3, 2},
		{"unavailable capped at replicas", rolling(2, i(0), i(5)), 0, 2},
		{"zero replicas: nothing may be unavailable", rolling(0, i(1), i(1)), 1, 0},
		{"recreate", recreateD(5), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, u := maxSurge(tt.d), maxUnavailable(tt.d); s != tt.wantSurge || u != tt.wantUnav {
				t.Errorf("maxSurge, maxUnavailable = %d, %d; want %d, %d", s, u, tt.wantSurge, tt.wantUnav)
			}
		})
	}
}

// TestRollingStep checks the arithmetic of one rolling update step: how far
// the new ReplicaSet may grow, and how many old replicas may go.
func TestRollingStep(t *testing.T) {
	tests := []struct {
		name          string
		d             *appsv1.Deployment
		old, new      *appsv1.ReplicaSet
		wantNew       int32 // newRSNewReplicas
		wantLimit     int32 // oldScaleDownLimit
		wantAvailable int32 // availableAboveMinimum
	}{
		{
			name: "start: surge first",
			d:    rolling(10, i(3), i(2)), old: rsWith("old", 10, 10), new: rsWith("new", 0, 0),
			wantNew: 3, wantLimit: 2, wantAvailable: 2,
		},
		{
			name: "at max surge: no growth, new pods not available yet",
			d:    rolling(10, i(3), i(2)), old: rsWith("old", 10, 10), new: rsWith("new", 3, 0),
			wantNew: 3, wantLimit: 2, wantAvailable: 2,
		},
		{
			name: "crash-looping new pods do not eat availability",
			d:    rolling(10, i(3), i(2)), old: rsWith("old", 8, 8), new: rsWith("new", 5, 0),
			wantNew: 5, wantLimit: 0, wantAvailable: 0,
		},
		{
			name: "new pods available: old may go",
			d:    rolling(10, i(3), i(2)), old: rsWith("old", 8, 8), new: rsWith("new", 5, 5),
			wantNew: 5, wantLimit: 5, wantAvailable: 5,
		},
		{
			name: "never beyond spec.replicas",
			d:    rolling(10, i(3), i(2)), old: rsWith("old", 1, 1), new: rsWith("new", 8, 8),
			wantNew: 10, wantLimit: 1, wantAvailable: 1,
		},
		{
			name: "no surge: make room first",
			d:    rolling(3, i(0), i(1)), old: rsWith("old", 3, 3), new: rsWith("new", 0, 0),
			wantNew: 0, wantLimit: 1, wantAvailable: 1,
		},
		{
			name: "no surge, room made",
			d:    rolling(3, i(0), i(1)), old: rsWith("old", 2, 2), new: rsWith("new", 0, 0),
			wantNew: 1, wantLimit: 0, wantAvailable: 0,
		},
		{
			name: "recreate takes everything at once",
			d:    recreateD(4), old: rsWith("old", 0, 0), new: rsWith("new", 0, 0),
			wantNew: 4, wantLimit: -4, wantAvailable: -4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := []*appsv1.ReplicaSet{tt.old, tt.new}
			n, err := newRSNewReplicas(tt.d, all, tt.new)
			if err != nil {
				t.Fatal(err)
			}
			limit := oldScaleDownLimit(tt.d, all, tt.new)
			avail := availableAboveMinimum(tt.d, all)
			if n != tt.wantNew || limit != tt.wantLimit || avail != tt.wantAvailable {
				t.Errorf("new RS %d, old scale-down limit %d, available above minimum %d; want %d, %d, %d",
					n, limit, avail, tt.wantNew, tt.wantLimit, tt.wantAvailable)
			}
		})
	}
}

func TestIsSaturated(t *testing.T) {
	d := rolling(3, i(1), i(0))
	annotated := func(rs *appsv1.ReplicaSet, desired string) *appsv1.ReplicaSet {
		rs.Annotations = map[string]string{annDesiredReplicas: desired}
		return rs
	}
	tests := []struct {
		name string
		rs   *appsv1.ReplicaSet
		want bool
	}{
		{"nil", nil, false},
		{"full and available", annotated(rsWith("a", 3, 3), "3"), true},
		{"not all available", annotated(rsWith("a", 3, 2), "3"), false},
		{"sized for another replica count", annotated(rsWith("a", 3, 3), "5"), false},
		{"no annotation", rsWith("a", 3, 3), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isSaturated(d, tt.rs); got != tt.want {
				t.Errorf("isSaturated = %v, want %v", got, tt.want)
			}
		})
	}
}

func typesUID(s string) types.UID { return types.UID(s) }
