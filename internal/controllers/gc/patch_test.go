package gc

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestPatches(t *testing.T) {
	a := obj{gvr: rsGVR, ns: "ns", name: "a", uid: "a"}
	b := obj{gvr: rsGVR, ns: "ns", name: "b", uid: "b"}
	c := obj{gvr: rsGVR, ns: "ns", name: "c", uid: "c"}
	pod := obj{gvr: podGVR, ns: "ns", name: "p", uid: "p",
		owners:     []metav1.OwnerReference{a.ref(true), b.ref(false), c.ref(true)},
		finalizers: []string{"x", metav1.FinalizerOrphanDependents, "y"},
	}
	tests := []struct {
		name       string
		patch      func(m *metav1.PartialObjectMetadata) []byte
		wantJSON   string
		wantOwners []string // uid:block
		wantFins   []string
	}{
		{
			name:       "remove owners",
			patch:      func(m *metav1.PartialObjectMetadata) []byte { return removeOwnersPatch(m, []types.UID{"a", "c"}) },
			wantJSON:   `[{"op":"test","path":"/metadata/uid","value":"p"},{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"c"},{"op":"remove","path":"/metadata/ownerReferences/2"},{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"a"},{"op":"remove","path":"/metadata/ownerReferences/0"}]`,
			wantOwners: []string{"b:false"},
			wantFins:   pod.finalizers,
		},
		{
			name: "remove finalizer",
			patch: func(m *metav1.PartialObjectMetadata) []byte {
				return removeFinalizerPatch(m, metav1.FinalizerOrphanDependents)
			},
			wantJSON:   `[{"op":"test","path":"/metadata/uid","value":"p"},{"op":"test","path":"/metadata/finalizers/1","value":"orphan"},{"op":"remove","path":"/metadata/finalizers/1"}]`,
			wantOwners: []string{"a:true", "b:false", "c:true"},
			wantFins:   []string{"x", "y"},
		},
		{
			name:       "unblock",
			patch:      func(m *metav1.PartialObjectMetadata) []byte { return unblockPatch(m) },
			wantJSON:   `[{"op":"test","path":"/metadata/uid","value":"p"},{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"a"},{"op":"add","path":"/metadata/ownerReferences/0/blockOwnerDeletion","value":false},{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"c"},{"op":"add","path":"/metadata/ownerReferences/2/blockOwnerDeletion","value":false}]`,
			wantOwners: []string{"a:false", "b:false", "c:false"},
			wantFins:   pod.finalizers,
		},
		{
			name:       "nothing to remove",
			patch:      func(m *metav1.PartialObjectMetadata) []byte { return removeOwnersPatch(m, []types.UID{"zzz"}) },
			wantOwners: []string{"a:true", "b:false", "c:true"},
			wantFins:   pod.finalizers,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			m := pod.meta()
			if err := srv.Tracker().Create(podGVR, m, "ns"); err != nil {
				t.Fatal(err)
			}
			p := tt.patch(m)
			if diff := cmp.Diff(tt.wantJSON, string(p)); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
			got := m
			if p != nil {
				var err error
				got, err = srv.Resource(podGVR).Namespace("ns").Patch(t.Context(), "p", types.JSONPatchType, p, metav1.PatchOptions{})
				if err != nil {
					t.Fatalf("apply: %v", err)
				}
			}
			var owners []string
			for _, r := range got.OwnerReferences {
				owners = append(owners, string(r.UID)+":"+map[bool]string{true: "true", false: "false"}[blocks(r)])
			}
			if diff := cmp.Diff(tt.wantOwners, owners); diff != "" {
				t.Errorf("owners (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFins, got.Finalizers); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPatchGuardFailsOnConcurrentChange(t *testing.T) {
	a := obj{gvr: rsGVR, ns: "ns", name: "a", uid: "a"}
	b := obj{gvr: rsGVR, ns: "ns", name: "b", uid: "b"}
	stale := obj{gvr: podGVR, ns: "ns", name: "p", uid: "p", owners: []metav1.OwnerReference{a.ref(false), b.ref(false)}}
	current := stale
	current.owners = []metav1.OwnerReference{b.ref(false)} // someone removed a meanwhile
	srv := newFakeServer(t)
	if err := srv.Tracker().Create(podGVR, current.meta(), "ns"); err != nil {
		t.Fatal(err)
	}
	// Built from the stale copy, the patch would remove index 1 (b) blindly.
	p := removeOwnersPatch(stale.meta(), []types.UID{"b"})
	if _, err := srv.Resource(podGVR).Namespace("ns").Patch(t.Context(), "p", types.JSONPatchType, p, metav1.PatchOptions{}); err == nil {
		t.Fatal("patch built from a stale object applied; want a failed test op")
	}
}
