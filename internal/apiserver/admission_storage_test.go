package apiserver_test

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func storageClaim(name string, class *string, annotations map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// TestStorageAdmission: DefaultStorageClass (the bootstrapped class
// "local", then the newest default) and the protection finalizers.
func TestStorageAdmission(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	core := s.Client.CoreV1()

	local, err := s.Client.StorageV1().StorageClasses().Get(ctx, "local", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the default class is not bootstrapped: %v", err)
	}
	if local.Provisioner != "wharf.dev/local" || *local.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		*local.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || !*local.AllowVolumeExpansion ||
		local.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("class local: %+v", local)
	}

	for _, tc := range []struct {
		name  string
		claim *corev1.PersistentVolumeClaim
		want  *string
	}{
		{"no class: the default", storageClaim("none", nil, nil), new("local")},
		{`"" asks for no class`, storageClaim("empty", new(""), nil), new("")},
		{"a named class stays", storageClaim("named", new("fast"), nil), new("fast")},
		{"the beta annotation names a class", storageClaim("beta", nil, map[string]string{"volume.beta.kubernetes.io/storage-class": "old"}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := core.PersistentVolumeClaims("default").Create(ctx, tc.claim, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if (got.Spec.StorageClassName == nil) != (tc.want == nil) || (tc.want != nil && *got.Spec.StorageClassName != *tc.want) {
				t.Errorf("storageClassName %v, want %v", deref(got.Spec.StorageClassName), deref(tc.want))
			}
			if !slices.Contains(got.Finalizers, "kubernetes.io/pvc-protection") {
				t.Errorf("finalizers %v, want kubernetes.io/pvc-protection", got.Finalizers)
			}
		})
	}

	// Of two defaults, the newer wins.
	time.Sleep(1100 * time.Millisecond) // creation timestamps have second precision
	if _, err := s.Client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "newer", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "example.com/nfs",
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := core.PersistentVolumeClaims("default").Create(ctx, storageClaim("second", nil, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := deref(got.Spec.StorageClassName); c != "newer" {
		t.Errorf("with two defaults: %q, want the newer", c)
	}

	pv, err := core.PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/pv1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pv.Finalizers, "kubernetes.io/pv-protection") {
		t.Errorf("volume finalizers %v, want kubernetes.io/pv-protection", pv.Finalizers)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
