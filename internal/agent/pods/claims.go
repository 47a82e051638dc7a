package pods

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// claimSource reads the claims of the node's pods and their volumes
// straight from the API (the Node authorizer allows exactly those gets):
// they are read once a sync until the pod runs, no watch is worth it.
type claimSource struct{ client kubernetes.Interface }

// PersistentVolumeClaim implements volume.ClaimSources.
func (s claimSource) PersistentVolumeClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error) {
	return s.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

// PersistentVolume implements volume.ClaimSources.
func (s claimSource) PersistentVolume(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	return s.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}
