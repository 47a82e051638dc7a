package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"wharf.dev/wharf/internal/resources"
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
	classes := make([]*storagev1.StorageClass, 0, len(objs))
	for _, o := range objs {
		if sc, ok := o.(*storagev1.StorageClass); ok {
			classes = append(classes, sc)
		}
	}
	if def := resources.DefaultStorageClass(classes); def != nil {
		pvc.Spec.StorageClassName = &def.Name
	}
	return nil
}

func addFinalizer(fs *[]string, f string) {
	if !slices.Contains(*fs, f) {
		*fs = append(*fs, f)
	}
}

// admitClaimResize is the PersistentVolumeClaimResize admission plugin: a
// claim's storage request may grow only if its class allows expansion.
func (s *Server) admitClaimResize(ctx context.Context, pvc, old *corev1.PersistentVolumeClaim) error {
	want, had := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if want.Cmp(had) <= 0 {
		return nil
	}
	forbidden := apierrors.NewForbidden(corev1.Resource("persistentvolumeclaims"), pvc.Name,
		errors.New("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"))
	name := storagehelpers.GetPersistentVolumeClaimClass(old)
	if name == "" {
		return forbidden
	}
	obj, err := s.get1(ctx, storagev1.SchemeGroupVersion.WithResource("storageclasses"), "", name)
	if apierrors.IsNotFound(err) {
		return forbidden
	}
	if err != nil {
		return fmt.Errorf("storage class of claim %q: %w", pvc.Name, err)
	}
	if sc := obj.(*storagev1.StorageClass); sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion {
		return forbidden
	}
	return nil
}
