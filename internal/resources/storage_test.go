package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "local-path", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "rancher.io/local-path",
		Parameters:  map[string]string{"nodePath": "/var/lib/wharf/volumes"},
	}
}

func TestStorageClass(t *testing.T) {
	r := StorageClasses()
	got := newStorageClass()
	r.Default(got)
	want := newStorageClass()
	want.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimDelete)
	want.VolumeBindingMode = ptrTo(storagev1.VolumeBindingImmediate)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted class (-want +got):\n%s", diff)
	}

	tests := []struct {
		name   string
		mutate func(*storagev1.StorageClass)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "wait for first consumer", mutate: func(sc *storagev1.StorageClass) {
			sc.VolumeBindingMode = ptrTo(storagev1.VolumeBindingWaitForFirstConsumer)
		}},
		{name: "bad name", mutate: func(sc *storagev1.StorageClass) { sc.Name = "Local Path" }, want: []wantErr{invalid("metadata.name")}},
		{name: "no provisioner", mutate: func(sc *storagev1.StorageClass) { sc.Provisioner = "" }, want: []wantErr{required("provisioner")}},
		{name: "bad provisioner", mutate: func(sc *storagev1.StorageClass) { sc.Provisioner = "a/b/c" }, want: []wantErr{invalid("provisioner")}},
		{name: "recycle", mutate: func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimRecycle) },
			want: []wantErr{notSupported("reclaimPolicy")}},
		{name: "binding mode", mutate: func(sc *storagev1.StorageClass) { sc.VolumeBindingMode = ptrTo(storagev1.VolumeBindingMode("Later")) },
			want: []wantErr{notSupported("volumeBindingMode")}},
		{name: "empty parameter key", mutate: func(sc *storagev1.StorageClass) { sc.Parameters[""] = "x" }, want: []wantErr{invalid("parameters")}},
		{name: "topology without values", mutate: func(sc *storagev1.StorageClass) {
			sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: "topology.kubernetes.io/zone"}}}}
		}, want: []wantErr{required("allowedTopologies[0].matchLabelExpressions[0].values")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := newStorageClass()
			r.Default(sc)
			if tt.mutate != nil {
				tt.mutate(sc)
			}
			checkErrs(t, r.Validate(sc), tt.want...)
		})
	}

	old := newStorageClass()
	r.Default(old)
	for _, tc := range []struct {
		mutate func(*storagev1.StorageClass)
		want   wantErr
	}{
		{func(sc *storagev1.StorageClass) { sc.Parameters["nodePath"] = "/srv" }, forbidden("parameters")},
		{func(sc *storagev1.StorageClass) { sc.Provisioner = "example.com/nfs" }, forbidden("provisioner")},
		{func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = ptrTo(corev1.PersistentVolumeReclaimRetain) }, forbidden("reclaimPolicy")},
		{func(sc *storagev1.StorageClass) {
			sc.VolumeBindingMode = ptrTo(storagev1.VolumeBindingWaitForFirstConsumer)
		}, invalid("volumeBindingMode")},
	} {
		sc := old.DeepCopy()
		tc.mutate(sc)
		checkErrs(t, r.ValidateUpdate(sc, old), tc.want)
	}
	changed := old.DeepCopy()
	changed.AllowVolumeExpansion = ptrTo(true)
	checkErrs(t, r.ValidateUpdate(changed, old))

	old.CreationTimestamp = ago(time.Hour)
	want2 := []any{"local-path (default)", "rancher.io/local-path", "Delete", "Immediate", false, "60m"}
	if diff := cmp.Diff(want2, storageClassRow(old, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestCSIDriver(t *testing.T) {
	r := CSIDrivers()
	d := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "hostpath.csi.k8s.io", CreationTimestamp: ago(time.Minute)}}
	r.Default(d)
	if !*d.Spec.AttachRequired || *d.Spec.PodInfoOnMount || *d.Spec.FSGroupPolicy != storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy ||
		len(d.Spec.VolumeLifecycleModes) != 1 || d.Spec.VolumeLifecycleModes[0] != storagev1.VolumeLifecyclePersistent {
		t.Errorf("defaulted spec %+v", d.Spec)
	}
	checkErrs(t, r.Validate(d))
	for _, tc := range []struct {
		mutate func(*storagev1.CSIDriver)
		want   wantErr
	}{
		{func(d *storagev1.CSIDriver) { d.Name = "Host Path" }, invalid("metadata.name")},
		{func(d *storagev1.CSIDriver) { d.Spec.AttachRequired = nil }, required("spec.attachRequired")},
		{func(d *storagev1.CSIDriver) { d.Spec.FSGroupPolicy = ptrTo(storagev1.FSGroupPolicy("Some")) }, notSupported("spec.fsGroupPolicy")},
		{func(d *storagev1.CSIDriver) { d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"Forever"} }, notSupported("spec.volumeLifecycleModes[0]")},
	} {
		bad := d.DeepCopy()
		tc.mutate(bad)
		checkErrs(t, r.Validate(bad), tc.want)
	}
	changed := d.DeepCopy()
	changed.Spec.AttachRequired = ptrTo(false)
	checkErrs(t, r.ValidateUpdate(changed, d), invalid("spec.attachRequired"))
	want := []any{"hostpath.csi.k8s.io", true, false, false, "<unset>", false, "Persistent", "60s"}
	if diff := cmp.Diff(want, csiDriverRow(d, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestVolumeAttachment(t *testing.T) {
	r := VolumeAttachments()
	va := &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "csi-0123"},
		Spec:       storagev1.VolumeAttachmentSpec{Attacher: "hostpath.csi.k8s.io", NodeName: "node-1", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptrTo("pv-1")}},
	}
	checkErrs(t, r.Validate(va))
	for _, tc := range []struct {
		mutate func(*storagev1.VolumeAttachment)
		want   wantErr
	}{
		{func(va *storagev1.VolumeAttachment) { va.Spec.Attacher = "" }, required("spec.attacher")},
		{func(va *storagev1.VolumeAttachment) { va.Spec.Source = storagev1.VolumeAttachmentSource{} }, required("spec.source")},
		{func(va *storagev1.VolumeAttachment) { va.Spec.Source.PersistentVolumeName = ptrTo("") }, required("spec.source.persistentVolumeName")},
		{func(va *storagev1.VolumeAttachment) { va.Spec.NodeName = "Node 1" }, invalid("spec.nodeName")},
	} {
		bad := va.DeepCopy()
		tc.mutate(bad)
		checkErrs(t, r.Validate(bad), tc.want)
	}
	changed := va.DeepCopy()
	changed.Spec.NodeName = "node-2"
	checkErrs(t, r.ValidateUpdate(changed, va), invalid("spec"))
	va.Status.Attached = true
	if row := r.Row(va); row[2] != "pv-1" || row[3] != "node-1" || row[4] != true {
		t.Errorf("row %v", row)
	}
}
