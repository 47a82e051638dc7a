package controlplane

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/controllers/volumebinding"
)

// DefaultStorageClassName is the class every cluster starts with: volumes
// on a node's disk, made by the node's provisioner (docs/storage.md).
const DefaultStorageClassName = "local"

// defaultStorageClass is the class claims without one get: WaitForFirstConsumer,
// since the volume lives on one node and the pod's other constraints choose
// it; Delete, as a dynamically provisioned volume's data is the claim's.
func defaultStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:          volumebinding.LocalProvisioner,
		ReclaimPolicy:        new(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    new(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: new(true),
	}
}

// bootstrapStorageClass creates the default class once; an operator may
// edit it or take its default annotation away, and deleting it is final
// only until the next start, like the other bootstrap objects.
func bootstrapStorageClass(ctx context.Context, client kubernetes.Interface) error {
	return create("storageclass "+DefaultStorageClassName, func() error {
		_, err := client.StorageV1().StorageClasses().Create(ctx, defaultStorageClass(), metav1.CreateOptions{})
		return err
	})
}
