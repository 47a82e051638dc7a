package gc

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// step is one informer event: observe an object, or forget a uid.
type step struct {
	observe *obj
	forget  types.UID
	want    []string // work items as "act:uid", sorted
}

func TestGraph(t *testing.T) {
	rs := obj{gvr: rsGVR, ns: "a", name: "rs", uid: "rs"}
	widget := obj{gvr: widgetGVR, name: "w", uid: "w"}
	pod := func(name string, owners ...metav1.OwnerReference) *obj {
		return &obj{gvr: podGVR, ns: "a", name: name, uid: types.UID(name), owners: owners}
	}
	with := func(o obj, deleting bool, fins ...string) *obj {
		o.deleting, o.finalizers = deleting, fins
		return &o
	}
	otherNS := func(o *obj) *obj { o.ns = "b"; return o }

	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "dependent of an unobserved owner is checked",
			steps: []step{
				{observe: pod("p1", rs.ref(false)), want: []string{"delete:p1"}},
			},
		},
		{
			name: "dependent of an observed owner is not",
			steps: []step{
				{observe: &rs},
				{observe: pod("p1", rs.ref(false))},
				{observe: pod("p1", rs.ref(false))}, // an update without owner change
			},
		},
		{
			name: "owner deleted: dependents are checked",
			steps: []step{
				{observe: &rs},
				{observe: pod("p1", rs.ref(false))},
				{observe: pod("p2", rs.ref(true))},
				{forget: "rs", want: []string{"delete:p1", "delete:p2"}},
			},
		},
		{
			name: "foreground deletion starts: owner and dependents are processed",
			steps: []step{
				{observe: &rs},
				{observe: pod("p1", rs.ref(true))},
				{observe: with(rs, true, metav1.FinalizerDeleteDependents), want: []string{"delete:p1", "delete:rs"}},
				// The owner waits: a dependent going away re-enqueues it.
				{forget: "p1", want: []string{"delete:rs"}},
			},
		},
		{
			name: "foreground: dependent dropping blockOwnerDeletion re-enqueues the owner",
			steps: []step{
				{observe: with(rs, true, metav1.FinalizerDeleteDependents), want: []string{"delete:rs"}},
				{observe: pod("p1", rs.ref(true)), want: []string{"delete:p1"}},
				{observe: pod("p1", rs.ref(false)), want: []string{"delete:rs"}},
				{observe: pod("p1"), want: []string{"delete:rs"}},
			},
		},
		{
			name: "orphan finalizer starts orphaning once",
			steps: []step{
				{observe: &rs},
				{observe: with(rs, true, metav1.FinalizerOrphanDependents), want: []string{"orphan:rs"}},
				{observe: with(rs, true, metav1.FinalizerOrphanDependents)},
			},
		},
		{
			name: "restart: owner already in deletion is a transition",
			steps: []step{
				{observe: with(rs, true, metav1.FinalizerOrphanDependents), want: []string{"orphan:rs"}},
			},
		},
		{
			name: "namespaced owner does not own a dependent in another namespace",
			steps: []step{
				{observe: &rs},
				{observe: otherNS(pod("p1", rs.ref(true))), want: []string{"delete:p1"}},
				{observe: with(rs, true, metav1.FinalizerDeleteDependents), want: []string{"delete:rs"}},
			},
		},
		{
			name: "cluster-scoped owner owns namespaced dependents",
			steps: []step{
				{observe: &widget},
				{observe: pod("p1", widget.ref(true))},
				{observe: with(widget, true, metav1.FinalizerDeleteDependents), want: []string{"delete:p1", "delete:w"}},
			},
		},
		{
			name: "forgetting an unknown uid is a no-op",
			steps: []step{
				{forget: "nope"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGraph()
			res := map[string]Resource{}
			for _, r := range testResources {
				res[r.GVR.Resource] = r
			}
			for i, s := range tt.steps {
				var work []workItem
				if s.observe != nil {
					work = g.observe(res[s.observe.gvr.Resource], s.observe.meta())
				} else {
					work = g.forget(s.forget)
				}
				var got []string
				for _, w := range work {
					got = append(got, fmt.Sprintf("%s:%s", w.act, w.uid))
				}
				slices.SortFunc(got, cmp.Compare)
				if diff := gocmp.Diff(s.want, got); diff != "" {
					t.Errorf("step %d: work (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestGraphDependentsOf(t *testing.T) {
	g := newGraph()
	rs := obj{gvr: rsGVR, ns: "a", name: "rs", uid: "rs"}
	g.observe(testResources[1], rs.meta())
	for _, o := range []obj{
		{gvr: podGVR, ns: "a", name: "p2", uid: "p2", owners: []metav1.OwnerReference{rs.ref(true)}},
		{gvr: podGVR, ns: "a", name: "p1", uid: "p1", owners: []metav1.OwnerReference{rs.ref(false)}},
		{gvr: podGVR, ns: "b", name: "p3", uid: "p3", owners: []metav1.OwnerReference{rs.ref(true)}},
	} {
		g.observe(testResources[2], o.meta())
	}
	var got []types.UID
	for _, d := range g.dependentsOf("rs") {
		got = append(got, d.id.UID)
	}
	if diff := gocmp.Diff([]types.UID{"p1", "p2"}, got); diff != "" {
		t.Errorf("dependents (-want +got):\n%s", diff)
	}
	g.forget("p2")
	if n := len(g.dependentsOf("rs")); n != 1 {
		t.Errorf("after forgetting p2: %d dependents, want 1", n)
	}
}
