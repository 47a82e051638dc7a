package gc

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
)

// fakeDiscovery answers ServerPreferredResources only.
type fakeDiscovery struct {
	discovery.ServerResourcesInterface
	lists []*metav1.APIResourceList
	err   error
}

func (f fakeDiscovery) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	return f.lists, f.err
}

func TestDiscoverResources(t *testing.T) {
	all := []string{"list", "watch", "delete", "get"}
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: all},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: []string{"get", "update"}},
			{Name: "nodes", Kind: "Node", Verbs: all},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: []string{"create"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true, Verbs: all},
		}},
	}
	want := []Resource{
		{GVR: podGVR, Kind: "Pod", Namespaced: true},
		{GVR: podGVR.GroupVersion().WithResource("nodes"), Kind: "Node"},
		{GVR: rsGVR, Kind: "ReplicaSet", Namespaced: true},
	}
	partial := &discovery.ErrGroupDiscoveryFailed{}
	tests := []struct {
		name    string
		d       fakeDiscovery
		want    []Resource
		wantErr bool
	}{
		{name: "list, watch and delete, no subresources", d: fakeDiscovery{lists: lists}, want: want},
		{name: "partial failure returns what was found", d: fakeDiscovery{lists: lists, err: partial}, want: want, wantErr: true},
		{name: "total failure", d: fakeDiscovery{err: errors.New("down")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DiscoverResources(tt.d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}
