package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The pod and claim writes of a round, with upstream's events:
// "create Pod web-0 in StatefulSet web successful" and the like.

func (r *round) podEvent(verb string, pod *v1.Pod, err error) {
	if err == nil {
		r.c.recorder.Eventf(r.set, v1.EventTypeNormal, "Successful"+verb,
			"%s Pod %s in StatefulSet %s successful", strings.ToLower(verb), pod.Name, r.set.Name)
		return
	}
	r.c.recorder.Eventf(r.set, v1.EventTypeWarning, "Failed"+verb,
		"%s Pod %s in StatefulSet %s failed error: %s", strings.ToLower(verb), pod.Name, r.set.Name, err)
}

func (r *round) claimEvent(verb string, claim *v1.PersistentVolumeClaim, pod *v1.Pod, err error) {
	if err == nil {
		r.c.recorder.Eventf(r.set, v1.EventTypeNormal, "Successful"+verb,
			"%s Claim %s Pod %s in StatefulSet %s success", strings.ToLower(verb), claim.Name, pod.Name, r.set.Name)
		return
	}
	r.c.recorder.Eventf(r.set, v1.EventTypeWarning, "Failed"+verb,
		"%s Claim %s for Pod %s in StatefulSet %s failed error: %s", strings.ToLower(verb), claim.Name, pod.Name, r.set.Name, err)
}

// createPod creates the pod's claims that do not exist yet, then the pod.
// A pod that already exists (the cache is behind) is not an error: its
// event will bring the set back.
func (r *round) createPod(ctx context.Context, pod *v1.Pod) error {
	if err := r.createClaims(ctx, pod); err != nil {
		return err
	}
	_, err := r.c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil
	case err != nil && apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause):
		return nil
	}
	r.podEvent("Create", pod, err)
	if err != nil {
		return fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	r.c.logger.Debug("created pod", "statefulset", r.set.Namespace+"/"+r.set.Name, "pod", pod.Name)
	return nil
}

// createClaims creates the claims of pod's ordinal that are missing. A
// claim being deleted blocks the pod: it would lose its data.
func (r *round) createClaims(ctx context.Context, pod *v1.Pod) error {
	for _, claim := range claimsFor(r.set, pod) {
		existing, err := r.c.claimLister.PersistentVolumeClaims(claim.Namespace).Get(claim.Name)
		if err == nil {
			if existing.DeletionTimestamp != nil {
				return fmt.Errorf("claim %s/%s of pod %s is being deleted", claim.Namespace, claim.Name, pod.Name)
			}
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
		claim.OwnerReferences, _ = claimOwners(claim, r.set, pod)
		_, err = r.c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		r.claimEvent("Create", claim, pod, err)
		if err != nil {
			return fmt.Errorf("create claim %s/%s for pod %s: %w", claim.Namespace, claim.Name, pod.Name, err)
		}
	}
	return nil
}

// fixPod brings a running pod's identity (adopted, or from an older
// controller) and its claims' owners in line with the set.
func (r *round) fixPod(ctx context.Context, pod *v1.Pod) error {
	if !labelsMatch(pod) {
		// Only labels can change on a running pod; hostname and subdomain
		// come with its creation.
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid": pod.UID,
			"labels": map[string]string{
				appsv1.StatefulSetPodNameLabel: pod.Name,
				appsv1.PodIndexLabel:           strconv.Itoa(ordinalOf(pod)),
			},
		}})
		if err != nil {
			return err
		}
		_, err = r.c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		r.podEvent("Update", pod, err)
		if err != nil {
			return fmt.Errorf("update pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	if err := r.createClaims(ctx, pod); err != nil {
		return err
	}
	return r.fixClaims(ctx, pod)
}

// fixClaims sets the owners of pod's claims as the retention policy wants.
func (r *round) fixClaims(ctx context.Context, pod *v1.Pod) error {
	for _, want := range claimsFor(r.set, pod) {
		claim, err := r.c.claimLister.PersistentVolumeClaims(want.Namespace).Get(want.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get claim %s/%s: %w", want.Namespace, want.Name, err)
		}
		refs, changed := claimOwners(claim, r.set, pod)
		if !changed {
			continue
		}
		next := claim.DeepCopy()
		next.OwnerReferences = refs
		if _, err := r.c.client.CoreV1().PersistentVolumeClaims(next.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			r.claimEvent("Update", claim, pod, err)
			return fmt.Errorf("update owners of claim %s/%s: %w", next.Namespace, next.Name, err)
		}
	}
	return nil
}

// deletePod deletes pod, if it is still the same pod (uid precondition).
func (r *round) deletePod(ctx context.Context, pod *v1.Pod) error {
	opts := metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(pod.UID))}
	err := r.c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opts)
	if apierrors.IsNotFound(err) {
		return nil
	}
	r.podEvent("Delete", pod, err)
	if err != nil {
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	r.c.logger.Debug("deleted pod", "statefulset", r.set.Namespace+"/"+r.set.Name, "pod", pod.Name)
	return nil
}
