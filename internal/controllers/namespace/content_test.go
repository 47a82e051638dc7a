package namespace

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConditions(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Minute))
	done := contentResult{}.conditions()
	discoveryErr := errors.New("discover resources: example.com/v1: 503")
	draining := contentResult{
		discoveryErr: discoveryErr,
		remaining:    map[string]int{"pods": 2, "replicasets.apps": 1},
		finalizers:   map[string]int{"example.com/hold": 1},
		failures:     []error{errors.New("list foo: boom")},
	}.conditions()
	// Same statuses as draining, other messages.
	drainingLess := contentResult{
		discoveryErr: discoveryErr,
		remaining:    map[string]int{"pods": 1},
		finalizers:   map[string]int{"example.com/hold": 1},
		failures:     []error{errors.New("other")},
	}.conditions()
	at := func(cs []v1.NamespaceCondition, ts metav1.Time) []v1.NamespaceCondition {
		out := make([]v1.NamespaceCondition, len(cs))
		for i, c := range cs {
			c.LastTransitionTime = ts
			out[i] = c
		}
		return out
	}
	tests := []struct {
		name        string
		have, want  []v1.NamespaceCondition
		wantOut     []v1.NamespaceCondition
		wantChanged bool
	}{
		{name: "first report", want: done, wantOut: at(done, now), wantChanged: true},
		{name: "unchanged", have: at(done, then), want: done, wantOut: at(done, then)},
		{name: "status flips get a new transition time", have: at(done, then), want: draining,
			wantOut: at(draining, now), wantChanged: true},
		{name: "message change keeps the transition time", have: at(draining, then), want: drainingLess,
			wantOut: at(drainingLess, then), wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeConditions(tt.have, tt.want, now)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.wantOut, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
	want := "Some resources are remaining: pods has 2 resource instances, replicasets.apps has 1 resource instances"
	if draining[2].Message != want {
		t.Errorf("remaining message = %q, want %q", draining[2].Message, want)
	}
}
