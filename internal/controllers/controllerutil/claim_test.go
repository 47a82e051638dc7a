package controllerutil

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestPatches(t *testing.T) {
	owner := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "rs-uid"}}
	adopt, err := AdoptPatch(owner, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	wantAdopt := `{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"rs-uid","controller":true,"blockOwnerDeletion":true}],"uid":"pod-uid"}}`
	if diff := cmp.Diff(wantAdopt, string(adopt)); diff != "" {
		t.Errorf("AdoptPatch (-want +got):\n%s", diff)
	}
	withFinalizer, err := AdoptPatch(owner, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), "pod-uid", "example.com/tracking")
	if err != nil {
		t.Fatal(err)
	}
	wantWithFinalizer := `{"metadata":{"finalizers":["example.com/tracking"],"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"rs-uid","controller":true,"blockOwnerDeletion":true}],"uid":"pod-uid"}}`
	if diff := cmp.Diff(wantWithFinalizer, string(withFinalizer)); diff != "" {
		t.Errorf("AdoptPatch with a finalizer (-want +got):\n%s", diff)
	}
	release, err := ReleasePatch("rs-uid", "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	wantRelease := `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":"rs-uid"}],"uid":"pod-uid"}}`
	if diff := cmp.Diff(wantRelease, string(release)); diff != "" {
		t.Errorf("ReleasePatch (-want +got):\n%s", diff)
	}
}

func TestClaim(t *testing.T) {
	owner := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "rs-uid"}}
	gvk := appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	ownedBy := func(uid string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: typesUID(uid), Controller: &yes}}
	}
	now := metav1.Now()
	tests := []struct {
		name        string
		pod         *v1.Pod
		ownerGone   bool
		canAdoptErr error
		wantClaimed bool
		wantPatch   string // "", "adopt" or "release"
		wantErr     bool
	}{
		{"owned and matching", pod("a", map[string]string{"app": "web"}, ownedBy("rs-uid")), false, nil, true, "", false},
		{"owned, not matching: released", pod("b", map[string]string{"app": "db"}, ownedBy("rs-uid")), false, nil, false, "release", false},
		{"owned, not matching, owner deleting: kept for GC", pod("c", map[string]string{"app": "db"}, ownedBy("rs-uid")), true, nil, false, "", false},
		{"someone else's", pod("d", map[string]string{"app": "web"}, ownedBy("other")), false, nil, false, "", false},
		{"matching orphan: adopted", pod("e", map[string]string{"app": "web"}, nil), false, nil, true, "adopt", false},
		{"non-matching orphan", pod("f", map[string]string{"app": "db"}, nil), false, nil, false, "", false},
		{"orphan, owner deleting", pod("g", map[string]string{"app": "web"}, nil), true, nil, false, "", false},
		{"orphan, adoption refused", pod("h", map[string]string{"app": "web"}, nil), false, errors.New("gone"), false, "", true},
		{"deleting orphan", func() *v1.Pod {
			p := pod("i", map[string]string{"app": "web"}, nil)
			p.DeletionTimestamp = &now
			return p
		}(), false, nil, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := owner.DeepCopy()
			if tt.ownerGone {
				o.DeletionTimestamp = &now
			}
			var patched string
			c := &Claimer{
				Owner:    o,
				OwnerGVK: gvk,
				Selector: labels.SelectorFromSet(labels.Set{"app": "web"}),
				CanAdopt: func(context.Context) error { return tt.canAdoptErr },
				Patch: func(_ context.Context, _ metav1.Object, patch []byte) error {
					if string(patch) == "" {
						return errors.New("empty patch")
					}
					if containsDelete(patch) {
						patched = "release"
					} else {
						patched = "adopt"
					}
					return nil
				},
			}
			claimed, err := c.Claim(context.Background(), tt.pod)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Claim error = %v, want error %v", err, tt.wantErr)
			}
			if claimed != tt.wantClaimed || patched != tt.wantPatch {
				t.Errorf("Claim = %v with patch %q, want %v with %q", claimed, patched, tt.wantClaimed, tt.wantPatch)
			}
		})
	}
}

func pod(name string, lbls map[string]string, refs []metav1.OwnerReference) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: typesUID(name), Labels: lbls, OwnerReferences: refs}}
}

func typesUID(s string) types.UID { return types.UID(s) }

func containsDelete(patch []byte) bool { return strings.Contains(string(patch), `"$patch":"delete"`) }

func TestClaimAll(t *testing.T) {
	owned := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs-uid", Controller: ptr.To(true)}}
	web := map[string]string{"app": "web"}
	tests := []struct {
		name      string
		pods      []*v1.Pod
		patchErr  error
		want      []string
		wantErrIs error
	}{
		{"owned and adopted, others left", []*v1.Pod{pod("a", web, owned), pod("b", map[string]string{"app": "db"}, nil), pod("c", web, nil)}, nil, []string{"a", "c"}, nil},
		{"nothing to claim", []*v1.Pod{pod("b", map[string]string{"app": "db"}, nil)}, nil, nil, nil},
		{"a failed adoption fails all", []*v1.Pod{pod("a", web, owned), pod("c", web, nil)}, errPatch, nil, errPatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Claimer{
				Owner:    &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "rs-uid"}},
				OwnerGVK: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
				Selector: labels.SelectorFromSet(web),
				Patch:    func(context.Context, metav1.Object, []byte) error { return tt.patchErr },
			}
			claimed, err := ClaimAll(context.Background(), c, tt.pods)
			if !errors.Is(err, tt.wantErrIs) || (err == nil) != (tt.wantErrIs == nil) {
				t.Fatalf("ClaimAll error = %v, want %v", err, tt.wantErrIs)
			}
			var got []string
			for _, p := range claimed {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ClaimAll (-want +got):\n%s", diff)
			}
		})
	}
}

var errPatch = errors.New("patch refused")
