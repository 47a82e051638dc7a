package controllerutil

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestDeletedObject(t *testing.T) {
	p := pod("a", nil, nil)
	tests := []struct {
		name   string
		obj    any
		want   *v1.Pod
		wantOK bool
	}{
		{"the object", p, p, true},
		{"in a tombstone", cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: p}, p, true},
		{"another type", &appsv1.ReplicaSet{}, nil, false},
		{"another type in a tombstone", cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: &appsv1.ReplicaSet{}}, nil, false},
		{"nil", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := DeletedObject[*v1.Pod](tt.obj)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("DeletedObject = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestResolveControllerRef(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "rs-uid"}}
	get := func(name string) (*appsv1.ReplicaSet, error) {
		if name != rs.Name {
			return nil, errors.New("not found")
		}
		return rs, nil
	}
	tests := []struct {
		name string
		ref  metav1.OwnerReference
		want *appsv1.ReplicaSet
	}{
		{"same object", metav1.OwnerReference{Kind: "ReplicaSet", Name: "web", UID: "rs-uid"}, rs},
		{"recreated under the same name", metav1.OwnerReference{Kind: "ReplicaSet", Name: "web", UID: "old-uid"}, nil},
		{"another kind", metav1.OwnerReference{Kind: "Deployment", Name: "web", UID: "rs-uid"}, nil},
		{"gone", metav1.OwnerReference{Kind: "ReplicaSet", Name: "db", UID: "rs-uid"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ResolveControllerRef(&tt.ref, "ReplicaSet", get)
			if got != tt.want || ok != (tt.want != nil) {
				t.Errorf("ResolveControllerRef = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func TestSelecting(t *testing.T) {
	withSelector := func(name string, sel *metav1.LabelSelector) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.ReplicaSetSpec{Selector: sel}}
	}
	all := []*appsv1.ReplicaSet{
		withSelector("web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}),
		withSelector("web-canary", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "track": "canary"}}),
		withSelector("empty", &metav1.LabelSelector{}),
		withSelector("nil", nil),
		withSelector("invalid", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}),
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{"one match", map[string]string{"app": "web"}, []string{"web"}},
		{"two matches", map[string]string{"app": "web", "track": "canary"}, []string{"web", "web-canary"}},
		{"no match", map[string]string{"app": "db"}, nil},
		{"no labels", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, rs := range Selecting(all, func(rs *appsv1.ReplicaSet) *metav1.LabelSelector { return rs.Spec.Selector }, tt.labels) {
				got = append(got, rs.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Selecting (-want +got):\n%s", diff)
			}
		})
	}
}
