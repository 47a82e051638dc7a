package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newPV() *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pv-1"}},
			StorageClassName:       "manual",
		},
	}
}

func TestPersistentVolumeDefaults(t *testing.T) {
	got := newPV()
	PersistentVolumes().Default(got)
	want := newPV()
	want.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	want.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
	want.Spec.HostPath.Type = ptrTo(corev1.HostPathUnset)
	want.Status.Phase = corev1.VolumePending
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted volume (-want +got):\n%s", diff)
	}
}

func TestPersistentVolumeValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.PersistentVolume)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "nfs", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.example", Path: "/exports"}}
		}},
		{name: "no access modes", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = nil }, want: []wantErr{required("spec.accessModes")}},
		{name: "unknown access mode", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadSometimes"}
		},
			want: []wantErr{notSupported("spec.accessModes")}},
		{name: "RWOP with others", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany}
		}, want: []wantErr{forbidden("spec.accessModes")}},
		{name: "no capacity", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.Capacity = nil }, want: []wantErr{required("spec.capacity")}},
		{name: "zero capacity", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("0") },
			want: []wantErr{invalid("spec.capacity[storage]")}},
		{name: "cpu capacity", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.Capacity[corev1.ResourceCPU] = resource.MustParse("1") },
			want: []wantErr{notSupported("spec.capacity")}},
		{name: "no source", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{} },
			want: []wantErr{required("spec")}},
		{name: "two sources", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"} },
			want: []wantErr{forbidden("spec.nfs")}},
		{name: "hostPath without path", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.HostPath.Path = "" },
			want: []wantErr{required("spec.hostPath.path")}},
		{name: "nfs relative path", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "exports"}}
		}, want: []wantErr{invalid("spec.nfs.path")}},
		{name: "local needs node affinity", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/disk"}}
		}, want: []wantErr{required("spec.nodeAffinity")}},
		{name: "csi without handle", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "hostpath.csi.k8s.io"}}
		}, want: []wantErr{required("spec.csi.volumeHandle")}},
		{name: "reclaim policy", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.PersistentVolumeReclaimPolicy = "Shred" },
			want: []wantErr{notSupported("spec.persistentVolumeReclaimPolicy")}},
		{name: "volume mode", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeMode("Tape")) },
			want: []wantErr{notSupported("spec.volumeMode")}},
		{name: "class name", mutate: func(pv *corev1.PersistentVolume) { pv.Spec.StorageClassName = "Manual Class" },
			want: []wantErr{invalid("spec.storageClassName")}},
		{name: "recycle /", mutate: func(pv *corev1.PersistentVolume) {
			pv.Spec.HostPath.Path, pv.Spec.PersistentVolumeReclaimPolicy = "/", corev1.PersistentVolumeReclaimRecycle
		}, want: []wantErr{forbidden("spec.persistentVolumeReclaimPolicy")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv := newPV()
			if tt.mutate != nil {
				tt.mutate(pv)
			}
			r := PersistentVolumes()
			r.Default(pv)
			checkErrs(t, r.Validate(pv), tt.want...)
		})
	}
}

func TestPersistentVolumeUpdateAndRow(t *testing.T) {
	r := PersistentVolumes()
	old := newPV()
	r.Default(old)
	bound := old.DeepCopy()
	bound.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
	bound.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("2Gi")
	checkErrs(t, r.ValidateUpdate(bound, old))
	moved := old.DeepCopy()
	moved.Spec.HostPath.Path = "/elsewhere"
	checkErrs(t, r.ValidateUpdate(moved, old), forbidden("spec.persistentvolumesource"))
	block := old.DeepCopy()
	block.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeBlock)
	checkErrs(t, r.ValidateUpdate(block, old), invalid("volumeMode"))

	bound.CreationTimestamp = ago(5 * time.Minute)
	bound.Status.Phase = corev1.VolumeBound
	want := []any{"pv-1", "2Gi", "RWO", "Retain", "Bound", "default/data", "manual", "<unset>", "", "5m", "Filesystem"}
	if diff := cmp.Diff(want, persistentVolumeRow(bound, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if f := r.SelectableFields(bound); f["name"] != "pv-1" {
		t.Errorf("fields %v", f)
	}
}

func newPVC() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func TestPersistentVolumeClaimValidate(t *testing.T) {
	got := newPVC()
	PersistentVolumeClaims().Default(got)
	if got.Status.Phase != corev1.ClaimPending || *got.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("defaulted claim: phase %q mode %v", got.Status.Phase, got.Spec.VolumeMode)
	}
	tests := []struct {
		name   string
		mutate func(*corev1.PersistentVolumeClaim)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "class", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptrTo("local-path") }},
		{name: "no access modes", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = nil }, want: []wantErr{required("spec.accessModes")}},
		{name: "unknown access mode", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"RWO"} },
			want: []wantErr{notSupported("spec.accessModes")}},
		{name: "no storage request", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = nil },
			want: []wantErr{required("spec.resources[storage]")}},
		{name: "zero storage", mutate: func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("0")
		}, want: []wantErr{invalid("spec.resources[storage]")}},
		{name: "bad class", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptrTo("Local_Path") },
			want: []wantErr{invalid("spec.storageClassName")}},
		{name: "bad selector", mutate: func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}
		}, want: []wantErr{invalid("spec.selector.matchLabels")}},
		{name: "data source kind", mutate: func(c *corev1.PersistentVolumeClaim) {
			c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "Pod", Name: "x"}
		}, want: []wantErr{invalid("spec.dataSource")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPVC()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			r := PersistentVolumeClaims()
			r.Default(c)
			checkErrs(t, r.Validate(c), tt.want...)
		})
	}
}

func TestPersistentVolumeClaimUpdate(t *testing.T) {
	size := func(c *corev1.PersistentVolumeClaim, s string) {
		c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(s)
	}
	tests := []struct {
		name   string
		bound  bool
		mutate func(*corev1.PersistentVolumeClaim)
		want   []wantErr
	}{
		{name: "binding sets volumeName", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-1" }},
		{name: "class set once where it was nil", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptrTo("local-path") }},
		{name: "bound claim grows", bound: true, mutate: func(c *corev1.PersistentVolumeClaim) { size(c, "2Gi") }},
		{name: "bound claim shrinks below capacity", bound: true, mutate: func(c *corev1.PersistentVolumeClaim) { size(c, "512Mi") },
			want: []wantErr{forbidden("spec.resources.requests.storage")}},
		{name: "pending claim cannot resize", mutate: func(c *corev1.PersistentVolumeClaim) { size(c, "2Gi") }, want: []wantErr{forbidden("spec")}},
		{name: "access modes are immutable", mutate: func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, want: []wantErr{forbidden("spec")}},
		{name: "rebinding", bound: true, mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-2" }, want: []wantErr{forbidden("spec")}},
		{name: "volume mode", mutate: func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeBlock) },
			want: []wantErr{forbidden("spec"), invalid("volumeMode")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newPVC()
			PersistentVolumeClaims().Default(old)
			if tt.bound {
				old.Spec.VolumeName = "pv-1"
				old.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
			}
			c := old.DeepCopy()
			tt.mutate(c)
			checkErrs(t, PersistentVolumeClaims().ValidateUpdate(c, old), tt.want...)
		})
	}
}

func TestPersistentVolumeClaimRow(t *testing.T) {
	c := newPVC()
	PersistentVolumeClaims().Default(c)
	c.CreationTimestamp = ago(time.Minute)
	want := []any{"data", "Pending", "", "", "", "", "<unset>", "60s", "Filesystem"}
	if diff := cmp.Diff(want, persistentVolumeClaimRow(c, testNow)); diff != "" {
		t.Errorf("pending row (-want +got):\n%s", diff)
	}
	c.Spec.VolumeName, c.Spec.StorageClassName = "pv-1", ptrTo("local-path")
	c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce},
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	want = []any{"data", "Bound", "pv-1", "1Gi", "RWO,RWX", "local-path", "<unset>", "60s", "Filesystem"}
	if diff := cmp.Diff(want, persistentVolumeClaimRow(c, testNow)); diff != "" {
		t.Errorf("bound row (-want +got):\n%s", diff)
	}
}
