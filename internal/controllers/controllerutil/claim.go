package controllerutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Claimer decides, for one sync of one owner, which objects the owner
// controls, like Kubernetes' ControllerRefManager: objects it owns that still
// match its selector are kept, owned ones that stopped matching are released,
// and matching orphans are adopted. Ownership changes are strategic merge
// patches on metadata.ownerReferences carrying the object's uid, so a patch
// never lands on a different object recreated under the same name.
//
// A Claimer is meant for one sync; it remembers the CanAdopt result.
type Claimer struct {
	Owner    metav1.Object
	OwnerGVK schema.GroupVersionKind
	Selector labels.Selector
	// CanAdopt is called once, before the first adoption. It should re-read
	// the owner from the API server, not a cache, and fail if the owner is
	// gone or being deleted: a deleted owner must not adopt anything the
	// garbage collector would then delete with it.
	CanAdopt func(ctx context.Context) error
	// Patch sends a strategic merge patch to the claimed object.
	Patch func(ctx context.Context, obj metav1.Object, patch []byte) error
	// AdoptFinalizers are added by the adoption patch, in the same write
	// as the ownerReference: the Job controller's tracking finalizer must
	// be on every pod it counts, adopted ones included.
	AdoptFinalizers []string

	once        sync.Once
	canAdoptErr error
}

// Claim reports whether the owner controls obj after reconciling its
// ownerReferences. Errors leave obj unclaimed; the caller should requeue.
func (c *Claimer) Claim(ctx context.Context, obj metav1.Object) (bool, error) {
	matches := c.Selector.Matches(labels.Set(obj.GetLabels()))
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != c.Owner.GetUID() {
			return false, nil
		}
		if matches {
			return true, nil
		}
		// A deleting owner keeps its objects so the garbage collector sees
		// them; releasing now would orphan them instead.
		if c.Owner.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := c.release(ctx, obj); err != nil {
			return false, err
		}
		return false, nil
	}
	if !matches || c.Owner.GetDeletionTimestamp() != nil || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if c.Owner.GetNamespace() != obj.GetNamespace() {
		return false, nil
	}
	if err := c.adopt(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ClaimAll claims each of objs with c and returns those the owner controls.
// Any error fails the whole claim, the errors joined: the caller must not
// act on a partial set.
func ClaimAll[T metav1.Object](ctx context.Context, c *Claimer, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		ok, err := c.Claim(ctx, obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, obj)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return claimed, nil
}

func (c *Claimer) adopt(ctx context.Context, obj metav1.Object) error {
	c.once.Do(func() {
		if c.CanAdopt != nil {
			c.canAdoptErr = c.CanAdopt(ctx)
		}
	})
	if c.canAdoptErr != nil {
		return fmt.Errorf("adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), c.canAdoptErr)
	}
	patch, err := AdoptPatch(c.Owner, c.OwnerGVK, obj.GetUID(), c.AdoptFinalizers...)
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func (c *Claimer) release(ctx context.Context, obj metav1.Object) error {
	patch, err := ReleasePatch(c.Owner.GetUID(), obj.GetUID())
	if err != nil {
		return err
	}
	err = c.Patch(ctx, obj, patch)
	// Gone, or recreated with another uid (the API server answers Invalid
	// on the uid precondition): either way it is not ours.
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return fmt.Errorf("release %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
}

// AdoptPatch returns the strategic merge patch that makes owner the
// controller of the object whose uid is objUID and adds finalizers (a merge:
// the object keeps its own).
func AdoptPatch(owner metav1.Object, ownerGVK schema.GroupVersionKind, objUID types.UID, finalizers ...string) ([]byte, error) {
	md := map[string]any{
		"uid":             objUID,
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(owner, ownerGVK)},
	}
	if len(finalizers) > 0 {
		md["finalizers"] = finalizers
	}
	patch := map[string]any{"metadata": md}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("adoption patch: %w", err)
	}
	return b, nil
}

// ReleasePatch returns the strategic merge patch that removes the owner
// reference to ownerUID from the object whose uid is objUID.
func ReleasePatch(ownerUID, objUID types.UID) ([]byte, error) {
	patch := map[string]any{
		"metadata": map[string]any{
			"uid":             objUID,
			"ownerReferences": []map[string]any{{"$patch": "delete", "uid": ownerUID}},
		},
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("release patch: %w", err)
	}
	return b, nil
}

// RecheckDeletion returns a CanAdopt function that fetches the owner with
// get and fails if it was replaced (another uid) or is being deleted.
func RecheckDeletion(owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return fmt.Errorf("recheck %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("%s/%s is gone: got uid %s, want %s", owner.GetNamespace(), owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s/%s is being deleted", owner.GetNamespace(), owner.GetName())
		}
		return nil
	}
}
