package controllerutil

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestTemplatePatch(t *testing.T) {
	tests := []struct {
		name     string
		template v1.PodTemplateSpec
		want     string
	}{
		{
			name: "empty template",
			want: `{"spec":{"template":{"$patch":"replace","metadata":{},"spec":{"containers":null}}}}`,
		},
		{
			name: "labels and a container",
			template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
			want: `{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.27","name":"web","resources":{}}]}}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TemplatePatch(&tt.template)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("TemplatePatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxRevision(t *testing.T) {
	rev := func(n int64) *appsv1.ControllerRevision { return &appsv1.ControllerRevision{Revision: n} }
	tests := []struct {
		name string
		revs []*appsv1.ControllerRevision
		want int64
	}{
		{name: "none", want: 0},
		{name: "one", revs: []*appsv1.ControllerRevision{rev(3)}, want: 3},
		{name: "unsorted", revs: []*appsv1.ControllerRevision{rev(2), rev(7), rev(1)}, want: 7},
		{name: "zero", revs: []*appsv1.ControllerRevision{rev(0)}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxRevision(tt.revs); got != tt.want {
				t.Errorf("MaxRevision = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCreateRevision(t *testing.T) {
	gvk := appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	owner := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "set-uid"}}
	other := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "other-uid"}}
	revision := func(controller *appsv1.StatefulSet, data string) *appsv1.ControllerRevision {
		r := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "ns"},
			Data:       runtime.RawExtension{Raw: []byte(data)},
			Revision:   2,
		}
		if controller != nil {
			r.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(controller, gvk)}
		}
		return r
	}
	tests := []struct {
		name          string
		existing      *appsv1.ControllerRevision
		createErr     error
		wantCreated   bool
		wantCollision bool
		wantErr       func(error) bool
	}{
		{name: "new name", wantCreated: true},
		{name: "ours, not yet cached", existing: revision(owner, `{"a":1}`), wantCreated: true},
		{name: "ours, other data", existing: revision(owner, `{"a":2}`), wantCollision: true, wantErr: apierrors.IsAlreadyExists},
		{name: "another owner's", existing: revision(other, `{"a":1}`), wantCollision: true, wantErr: apierrors.IsAlreadyExists},
		{name: "orphan", existing: revision(nil, `{"a":1}`), wantCollision: true, wantErr: apierrors.IsAlreadyExists},
		{
			name:      "create fails",
			createErr: apierrors.NewForbidden(appsv1.Resource("controllerrevisions"), "web-abc", errors.New("no")),
			wantErr:   apierrors.IsForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tt.existing != nil {
				if _, err := cs.AppsV1().ControllerRevisions("ns").Create(context.Background(), tt.existing, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.createErr != nil {
				cs.PrependReactor("create", "controllerrevisions", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.createErr
				})
			}
			want := revision(owner, `{"a":1}`)
			got, collision, err := CreateRevision(context.Background(), cs.AppsV1(), owner, want)
			if collision != tt.wantCollision {
				t.Errorf("collision = %v, want %v", collision, tt.wantCollision)
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("err = %v, not the expected kind", err)
			}
			if !tt.wantCreated {
				if got != nil {
					t.Errorf("got revision %v, want none", got.Name)
				}
				return
			}
			if got == nil || got.Name != want.Name || string(got.Data.Raw) != string(want.Data.Raw) || !metav1.IsControlledBy(got, owner) {
				t.Errorf("got %+v, want %s with data %s controlled by %s", got, want.Name, want.Data.Raw, owner.UID)
			}
		})
	}
}

func TestClaimRevisions(t *testing.T) {
	gvk := appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	owner := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid"}}
	other := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", UID: "other-uid"}}
	rev := func(name string, lbls map[string]string, controller *appsv1.DaemonSet) *appsv1.ControllerRevision {
		r := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: lbls}}
		if controller != nil {
			r.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(controller, gvk)}
		}
		return r
	}
	match := map[string]string{"app": "agent"}
	all := []*appsv1.ControllerRevision{
		rev("owned", match, owner),
		rev("orphan", match, nil),
		rev("orphan-nomatch", map[string]string{"app": "x"}, nil),
		rev("others", match, other),
		rev("owned-nomatch", map[string]string{"app": "x"}, owner),
	}
	cs := fake.NewClientset()
	for _, r := range all {
		if _, err := cs.AppsV1().ControllerRevisions("ns").Create(context.Background(), r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := ClaimRevisions(context.Background(), cs.AppsV1(), owner, gvk, labels.SelectorFromSet(match), nil, all)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range claimed {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"owned", "orphan"}, names); diff != "" {
		t.Errorf("claimed (-want +got):\n%s", diff)
	}
	patched := map[string]bool{}
	for _, a := range cs.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok {
			patched[p.GetName()] = true
		}
	}
	if diff := cmp.Diff(map[string]bool{"orphan": true, "owned-nomatch": true}, patched); diff != "" {
		t.Errorf("patched (-want +got):\n%s", diff)
	}
}
