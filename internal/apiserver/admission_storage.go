package apiserver

import (
	"context"
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// The storage-object-in-use-protection finalizers (the volumeprotection
// controller removes them).
const (
	pvcProtectionFinalizer = "kubernetes.io/pvc-protection"
	pvProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// admitPersistentVolumeClaim is the DefaultStorageClass and
// StorageObjectInUseProtection admission plugins: a claim that names no
// class (spec.storageClassName nil and no beta annotation; "" is a choice)
// gets the default class, and every claim the pvc-protection finalizer.
func (s *Server) admitPersistentVolumeClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	addFinalizer(&pvc.Finalizers, pvcProtectionFinalizer)
	if storagehelpers.PersistentVolumeClaimHasClass(pvc) {
		return nil
	}
	objs, err := storeObjects{s}.List(ctx, storagev1.SchemeGroupVersion.WithResource("storageclasses"), "")
	if err != nil {
		return fmt.Errorf("default storage class for claim %q: %w", pvc.Name, err)
	}
	if def := defaultStorageClass(objs); def != "" {
		pvc.Spec.StorageClassName = &def
	}
	return nil
}

// defaultStorageClass is upstream's choice among classes annotated
// default: the newest, then by name. "" when none is.
func defaultStorageClass(objs []runtime.Object) string {
	var defs []*storagev1.StorageClass
	for _, o := range objs {
		if sc, ok := o.(*storagev1.StorageClass); ok &&
			(sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" ||
				sc.Annotations["storageclass.beta.kubernetes.io/is-default-class"] == "true") {
			defs = append(defs, sc)
		}
	}
	if len(defs) == 0 {
		return ""
	}
	sort.Slice(defs, func(i, j int) bool {
		ti, tj := defs[i].CreationTimestamp.UnixNano(), defs[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defs[i].Name < defs[j].Name
		}
		return ti > tj
	})
	return defs[0].Name
}

func addFinalizer(fs *[]string, f string) {
	if !slices.Contains(*fs, f) {
		*fs = append(*fs, f)
	}
}
