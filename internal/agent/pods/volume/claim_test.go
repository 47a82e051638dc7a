package volume

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"wharf.dev/wharf/internal/agent/localpv"
)

// claimSources adds claims and volumes to sources.
type claimSources struct {
	sources
	claims map[string]*v1.PersistentVolumeClaim
	pvs    map[string]*v1.PersistentVolume
}

func (s *claimSources) PersistentVolumeClaim(_ context.Context, _, name string) (*v1.PersistentVolumeClaim, error) {
	if c, ok := s.claims[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("persistentvolumeclaims"), name)
}

func (s *claimSources) PersistentVolume(_ context.Context, name string) (*v1.PersistentVolume, error) {
	if pv, ok := s.pvs[name]; ok {
		return pv, nil
	}
	return nil, apierrors.NewNotFound(v1.Resource("persistentvolumes"), name)
}

func TestClaimVolumes(t *testing.T) {
	dir := t.TempDir()
	bound := func(name, pv string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
			Spec:       v1.PersistentVolumeClaimSpec{VolumeName: pv},
			Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
		}
	}
	local := func(name, claim, node, path string) *v1.PersistentVolume {
		return &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{
				ClaimRef:               &v1.ObjectReference{Namespace: "ns", Name: claim, UID: types.UID("uid-" + claim)},
				PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: path}},
				NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
					MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{node}}},
				}}}},
			},
		}
	}
	unmounted := local("pv-ours", "ours", "n1", dir)
	unmounted.Annotations = map[string]string{localpv.AnnProvisionedBy: localpv.Name}
	nfs := local("pv-nfs", "nfs", "n1", dir)
	nfs.Spec.Local, nfs.Spec.NFS = nil, &v1.NFSVolumeSource{Server: "x", Path: "/"}
	src := &claimSources{
		claims: map[string]*v1.PersistentVolumeClaim{
			"data":    bound("data", "pv-data"),
			"pending": {ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending}},
			"far":     bound("far", "pv-far"),
			"nfs":     bound("nfs", "pv-nfs"),
			"ours":    bound("ours", "pv-ours"),
			"stolen":  bound("stolen", "pv-data"),
		},
		pvs: map[string]*v1.PersistentVolume{
			"pv-data": local("pv-data", "data", "n1", dir),
			"pv-far":  local("pv-far", "far", "n2", dir),
			"pv-nfs":  nfs,
			"pv-ours": unmounted,
		},
	}
	m := New(t.TempDir(), src, WithNode("n1", nil))
	tests := []struct {
		claim    string
		want     string
		wantErr  string
		notBound bool
	}{
		{claim: "data", want: dir},
		{claim: "pending", wantErr: `persistentvolumeclaim "pending" is not bound`, notBound: true},
		{claim: "missing", wantErr: `error processing PVC ns/missing: persistentvolumeclaims "missing" not found`},
		{claim: "far", wantErr: `persistentvolumeclaim "far": volume "pv-far" is not on node "n1" (node affinity)`},
		{claim: "nfs", wantErr: `persistentvolumeclaim "nfs": volume "pv-nfs" is not a local volume, the only kind this node mounts`},
		{claim: "ours", wantErr: `persistentvolumeclaim "ours": volume "pv-ours" is not mounted yet`},
		{claim: "stolen", wantErr: `persistentvolumeclaim "stolen": volume "pv-data" is bound to another claim`},
	}
	for _, tt := range tests {
		t.Run(tt.claim, func(t *testing.T) {
			p := pod(v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: tt.claim}}})
			paths, err := m.Setup(context.Background(), p, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrNotBound) != tt.notBound {
					t.Errorf("errors.Is(err, ErrNotBound) = %v", !tt.notBound)
				}
				return
			}
			if err != nil || paths["v"] != tt.want {
				t.Fatalf("paths %v, err %v; want %s", paths, err, tt.want)
			}
		})
	}
	t.Run("without claim sources", func(t *testing.T) {
		p := pod(v1.Volume{Name: "v", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
		if _, err := New(t.TempDir(), &sources{}).Setup(context.Background(), p, nil); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestReadOnly(t *testing.T) {
	p := pod(
		v1.Volume{Name: "ro", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "a", ReadOnly: true}}},
		v1.Volume{Name: "rw", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "b"}}},
		v1.Volume{Name: "tmp", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	)
	for name, want := range map[string]bool{"ro": true, "rw": false, "tmp": false, "none": false} {
		if got := ReadOnly(p, name); got != want {
			t.Errorf("ReadOnly(%s) = %v, want %v", name, got, want)
		}
	}
}
