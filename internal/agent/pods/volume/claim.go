package volume

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"wharf.dev/wharf/internal/agent/localpv"
	"wharf.dev/wharf/internal/mountinfo"
)

// ClaimSources reads claims and volumes for persistentVolumeClaim
// volumes; Sources that do not implement it leave such volumes
// unsupported. A missing object is the API's NotFound error.
type ClaimSources interface {
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error)
	PersistentVolume(ctx context.Context, name string) (*v1.PersistentVolume, error)
}

// ErrNotBound: a pod's claim has no volume yet; the pod waits.
var ErrNotBound = errors.New("is not bound")

// Option changes a Manager.
type Option func(*Manager)

// WithNode names the node and its labels, which a local PersistentVolume's
// node affinity must match (default: only kubernetes.io/hostname=name).
func WithNode(name string, labels map[string]string) Option {
	return func(m *Manager) {
		if labels == nil {
			labels = map[string]string{v1.LabelHostname: name}
		}
		m.node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
}

// claimPath resolves a persistentVolumeClaim volume to the host path of
// its bound volume: a local PV of this node. What the runtime mounts is
// that path (read-only when the volume says so, see ReadOnly).
func (m *Manager) claimPath(ctx context.Context, pod *v1.Pod, src *v1.PersistentVolumeClaimVolumeSource) (string, error) {
	cs, ok := m.src.(ClaimSources)
	if !ok || m.node == nil {
		return "", errors.New("persistentVolumeClaim volumes are not supported on this node")
	}
	claim, err := cs.PersistentVolumeClaim(ctx, pod.Namespace, src.ClaimName)
	if err != nil {
		return "", fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, src.ClaimName, err)
	}
	switch {
	case claim.DeletionTimestamp != nil:
		return "", fmt.Errorf("persistentvolumeclaim %q is being deleted", claim.Name)
	case claim.Spec.VolumeName == "" || claim.Status.Phase != v1.ClaimBound:
		return "", fmt.Errorf("persistentvolumeclaim %q %w", claim.Name, ErrNotBound)
	}
	pv, err := cs.PersistentVolume(ctx, claim.Spec.VolumeName)
	if err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: volume %q: %w", claim.Name, claim.Spec.VolumeName, err)
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID {
		return "", fmt.Errorf("persistentvolumeclaim %q: volume %q is bound to another claim", claim.Name, pv.Name)
	}
	if pv.Spec.Local == nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: volume %q is not a local volume, the only kind this node mounts", claim.Name, pv.Name)
	}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == v1.PersistentVolumeBlock {
		return "", fmt.Errorf("persistentvolumeclaim %q: volume %q: block volumes are not supported", claim.Name, pv.Name)
	}
	if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
		ok, err := corev1helpers.MatchNodeSelectorTerms(m.node, na.Required)
		if err != nil || !ok {
			return "", fmt.Errorf("persistentvolumeclaim %q: volume %q is not on node %q (node affinity)", claim.Name, pv.Name, m.node.Name)
		}
	}
	path := pv.Spec.Local.Path
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: volume %q: %w", claim.Name, pv.Name, err)
	}
	// The provisioner's volumes are filesystems of their own: never let a
	// pod write into the directory under one that is not mounted (yet),
	// where nothing bounds it.
	if pv.Annotations[localpv.AnnProvisionedBy] == localpv.Name {
		if ok, err := mountinfo.IsMountPoint(path); err != nil || !ok {
			return "", fmt.Errorf("persistentvolumeclaim %q: volume %q is not mounted yet", claim.Name, pv.Name)
		}
	}
	return path, nil
}

// ReadOnly reports whether pod's volume name must be mounted read-only
// whatever its volumeMounts say: a claim with readOnly set.
func ReadOnly(pod *v1.Pod, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == name && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ReadOnly
		}
	}
	return false
}
