package pods

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/agent/pods/volume"
)

// claimSource reads the volumes bound to the node's pods' claims straight
// from the API (the Node authorizer allows these gets). The claims
// themselves are watched, one by one, in the objectCache: their binding
// wakes the pods that wait for it.
type claimSource struct{ client kubernetes.Interface }

// PersistentVolume implements volume.ClaimSources.
func (s claimSource) PersistentVolume(ctx context.Context, name string) (*v1.PersistentVolume, error) {
	return s.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}

var _ volume.ClaimSources = volumeSources{}
