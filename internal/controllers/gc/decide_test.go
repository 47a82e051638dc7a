package gc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecideDependent(t *testing.T) {
	rs1 := obj{gvr: rsGVR, ns: "ns", name: "rs1", uid: "rs1"}
	rs2 := obj{gvr: rsGVR, ns: "ns", name: "rs2", uid: "rs2"}
	pod := func(fins []string, owners ...metav1.OwnerReference) *metav1.PartialObjectMetadata {
		return obj{gvr: podGVR, ns: "ns", name: "p", uid: "p", owners: owners, finalizers: fins}.meta()
	}
	deletingDep := node{id: objectID{UID: "c"}, deleting: true, foreground: true}
	plainDep := node{id: objectID{UID: "c"}}

	tests := []struct {
		name   string
		obj    *metav1.PartialObjectMetadata
		owners map[types.UID]ownerState
		deps   []node
		want   verdict
	}{
		{
			name: "no owners: nothing to do",
			obj:  pod(nil),
			want: verdict{},
		},
		{
			name:   "owner alive: keep",
			obj:    pod(nil, rs1.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAlive},
			want:   verdict{},
		},
		{
			name:   "owner gone: delete in background",
			obj:    pod(nil, rs1.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAbsent},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "unclassified owner counts as alive",
			obj:    pod(nil, rs1.ref(false)),
			owners: map[types.UID]ownerState{},
			want:   verdict{},
		},
		{
			name:   "one of two owners gone: remove its reference",
			obj:    pod(nil, rs1.ref(false), rs2.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAbsent, "rs2": ownerAlive},
			want:   verdict{RemoveOwners: []types.UID{"rs1"}},
		},
		{
			name:   "both owners gone: delete",
			obj:    pod(nil, rs1.ref(false), rs2.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAbsent, "rs2": ownerAbsent},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "one owner waiting, other alive: drop the waiting owner's reference",
			obj:    pod(nil, rs1.ref(true), rs2.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerWaiting, "rs2": ownerAlive},
			want:   verdict{RemoveOwners: []types.UID{"rs1"}},
		},
		{
			name:   "owner waiting, no dependents: delete in background",
			obj:    pod(nil, rs1.ref(true)),
			owners: map[types.UID]ownerState{"rs1": ownerWaiting},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "owner waiting, has dependents: delete in foreground",
			obj:    pod(nil, rs1.ref(true)),
			owners: map[types.UID]ownerState{"rs1": ownerWaiting},
			deps:   []node{plainDep},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:   "owner waiting, a dependent waits too: unblock to break the cycle",
			obj:    pod(nil, rs1.ref(true)),
			owners: map[types.UID]ownerState{"rs1": ownerWaiting},
			deps:   []node{deletingDep},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground, Unblock: true},
		},
		{
			name:   "owner gone, orphan finalizer: delete with orphan policy",
			obj:    pod([]string{metav1.FinalizerOrphanDependents}, rs1.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAbsent},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name:   "owner gone, foreground finalizer: delete in foreground",
			obj:    pod([]string{metav1.FinalizerDeleteDependents}, rs1.ref(false)),
			owners: map[types.UID]ownerState{"rs1": ownerAbsent},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideDependent(tt.obj, tt.owners, tt.deps)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlockingDependents(t *testing.T) {
	owner := obj{gvr: rsGVR, ns: "ns", name: "rs", uid: "rs"}
	other := obj{gvr: rsGVR, ns: "ns", name: "other", uid: "other"}
	dep := func(uid types.UID, refs ...metav1.OwnerReference) node {
		return node{id: objectID{UID: uid}, owners: refs}
	}
	tests := []struct {
		name string
		deps []node
		want []types.UID
	}{
		{name: "none", want: nil},
		{name: "blocking", deps: []node{dep("a", owner.ref(true))}, want: []types.UID{"a"}},
		{name: "not blocking", deps: []node{dep("a", owner.ref(false))}, want: nil},
		{name: "blocks another owner only", deps: []node{dep("a", owner.ref(false), other.ref(true))}, want: nil},
		{
			name: "mixed",
			deps: []node{dep("a", owner.ref(true)), dep("b", owner.ref(false)), dep("c", other.ref(false), owner.ref(true))},
			want: []types.UID{"a", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []types.UID
			for _, d := range blockingDependents("rs", tt.deps) {
				got = append(got, d.id.UID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("blocking (-want +got):\n%s", diff)
			}
		})
	}
}
