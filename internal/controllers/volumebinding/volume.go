package volumebinding

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// Volume event reasons, as upstream's.
const (
	reasonVolumeFailedDelete  = "VolumeFailedDelete"
	reasonVolumeFailedRecycle = "VolumeFailedRecycle"
	reasonUnknownReclaim      = "VolumeUnknownReclaimPolicy"
)

func (c *Controller) syncVolumeKey(ctx context.Context, name string) error {
	pv, err := c.volume(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get volume %s: %w", name, err)
	}
	return c.syncVolume(ctx, pv)
}

// syncVolume is upstream's syncVolume.
func (c *Controller) syncVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	cr := pv.Spec.ClaimRef
	if cr == nil || cr.UID == "" {
		// Unused, or pre-bound to a claim that the claim's sync binds.
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
		return err
	}
	claim, err := c.claimOf(ctx, pv)
	if err != nil {
		return err
	}
	switch {
	case claim == nil:
		// The claim is gone: Released, then the reclaim policy.
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			c.logger.Info("volume released, its reclaim policy applies", "volume", pv.Name, "reclaimPolicy", pv.Spec.PersistentVolumeReclaimPolicy)
			if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, pv)
	case claim.Spec.VolumeName == "":
		if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &pv.Spec) {
			c.volumeEvent(pv, corev1.EventTypeWarning, reasonVolumeMismatch,
				fmt.Sprintf("Cannot bind PersistentVolume to requested PersistentVolumeClaim %q due to incompatible volumeMode.", claim.Name))
			c.event(claim, corev1.EventTypeWarning, reasonVolumeMismatch,
				fmt.Sprintf("Cannot bind PersistentVolume %q to requested PersistentVolumeClaim due to incompatible volumeMode.", pv.Name))
			return nil
		}
		// The claim's sync finishes the binding.
		c.queue.Add(key{name: claim.Namespace + "/" + claim.Name})
		return nil
	case claim.Spec.VolumeName == pv.Name:
		_, err := c.updateVolumePhase(ctx, pv, corev1.VolumeBound, "")
		return err
	case metav1.HasAnnotation(pv.ObjectMeta, storagehelpers.AnnDynamicallyProvisioned) && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		// Provisioned for a claim that got another volume: not needed.
		if pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed {
			if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
				return err
			}
		}
		return c.reclaim(ctx, pv)
	default:
		// The claim is bound elsewhere: undo our binding, or drop the uid of
		// a user's pre-binding.
		return c.unbindVolume(ctx, pv)
	}
}

// claimOf returns the claim a volume is bound to, nil if it no longer
// exists. The informer may be behind a provisioner or the scheduler, so a
// claim missing from it, or with another uid, is read from the API before
// the volume is released.
func (c *Controller) claimOf(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	cr := pv.Spec.ClaimRef
	claim, err := c.claims.PersistentVolumeClaims(cr.Namespace).Get(cr.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	released := pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed
	if (claim == nil && !released) || (claim != nil && claim.UID != cr.UID) {
		claim, err = c.client.CoreV1().PersistentVolumeClaims(cr.Namespace).Get(ctx, cr.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get claim %s/%s of volume %s: %w", cr.Namespace, cr.Name, pv.Name, err)
		}
	}
	if claim != nil && claim.UID != cr.UID {
		return nil, nil // deleted, and another made under the same name
	}
	return claim, nil
}

// reclaim applies a Released volume's reclaim policy. Retain keeps it; Delete
// is the provisioner's (docs/storage.md): the controller only waits.
func (c *Controller) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		if p := pv.Annotations[storagehelpers.AnnDynamicallyProvisioned]; p != "" && !strings.HasPrefix(p, "kubernetes.io/") {
			return nil // its provisioner deletes it
		}
		msg := fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name)
		_, err := c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, reasonVolumeFailedDelete, msg)
		return err
	case corev1.PersistentVolumeReclaimRecycle:
		_, err := c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, reasonVolumeFailedRecycle, "No recycler plugin found for the volume!")
		return err
	default:
		_, err := c.updateVolumePhaseWithEvent(ctx, pv, corev1.VolumeFailed, reasonUnknownReclaim, "Volume has unrecognized PersistentVolumeReclaimPolicy")
		return err
	}
}

func (c *Controller) unbindVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	next := pv.DeepCopy()
	if metav1.HasAnnotation(pv.ObjectMeta, storagehelpers.AnnBoundByController) {
		next.Spec.ClaimRef = nil
		delete(next.Annotations, storagehelpers.AnnBoundByController)
		if len(next.Annotations) == 0 {
			next.Annotations = nil
		}
	} else {
		next.Spec.ClaimRef.UID = ""
	}
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("unbind volume %s: %w", pv.Name, err)
	}
	c.rememberWritten(out)
	_, err = c.updateVolumePhase(ctx, out, corev1.VolumeAvailable, "")
	return err
}

func (c *Controller) updateVolumePhaseWithEvent(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, reason, message string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase {
		return pv, nil
	}
	out, err := c.updateVolumePhase(ctx, pv, phase, message)
	if err != nil {
		return nil, err
	}
	c.volumeEvent(out, corev1.EventTypeWarning, reason, message)
	return out, nil
}

// updateVolumePhase sets the phase, its message and, on a change, the
// lastPhaseTransitionTime.
func (c *Controller) updateVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, message string) (*corev1.PersistentVolume, error) {
	if pv.Status.Phase == phase && pv.Status.Message == message {
		return pv, nil
	}
	next := pv.DeepCopy()
	if pv.Status.Phase != phase {
		now := metav1.Now()
		next.Status.LastPhaseTransitionTime = &now
	}
	next.Status.Phase, next.Status.Message = phase, message
	out, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set volume %s %s: %w", pv.Name, phase, err)
	}
	c.rememberWritten(out)
	return out, nil
}
