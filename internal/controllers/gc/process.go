package gc

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// attemptToDelete checks the object uid against its owners on live data. It
// asks for a requeue while a live owner has not been observed yet: if that
// owner were deleted before its informer ever saw it, no event would bring
// the dependent back.
func (c *Controller) attemptToDelete(ctx context.Context, uid types.UID) (requeue bool, err error) {
	n, ok := c.graph.get(uid)
	if !ok {
		return false, nil
	}
	latest, err := c.get(ctx, n.id)
	if errors.Is(err, errNotServed) {
		return false, nil // its resource went: SetResources forgets it
	}
	if err != nil || latest == nil {
		// Gone: the informer will report it and enqueue its dependents.
		return false, err
	}
	if latest.DeletionTimestamp != nil {
		if hasFinalizer(latest, metav1.FinalizerDeleteDependents) {
			return false, c.finishForeground(ctx, n.id, latest)
		}
		return false, nil
	}
	refs := latest.OwnerReferences
	if len(refs) == 0 {
		return false, nil
	}
	states := make(map[types.UID]ownerState, len(refs))
	unobserved := false
	for _, ref := range refs {
		st, observed, err := c.ownerState(ctx, n.id, ref)
		if err != nil {
			return false, err
		}
		states[ref.UID] = st
		if st == ownerAlive && !observed {
			unobserved = true
		}
	}
	v := decideDependent(latest, states, c.graph.dependentsOf(uid))
	if len(v.RemoveOwners) > 0 {
		if err := c.patch(ctx, n.id, removeOwnersPatch(latest, v.RemoveOwners)); err != nil {
			return false, fmt.Errorf("remove dangling owner references: %w", err)
		}
		c.logger.Info("removed owner references", "object", n.id.String(), "owners", v.RemoveOwners)
	}
	if !v.Delete {
		return unobserved, nil
	}
	if v.Unblock {
		if err := c.patch(ctx, n.id, unblockPatch(latest)); err != nil {
			return false, fmt.Errorf("unblock owner references: %w", err)
		}
	}
	if err := c.delete(ctx, n.id, v.Policy); err != nil {
		return false, err
	}
	c.logger.Info("deleted object whose owners are gone", "object", n.id.String(), "propagation", v.Policy)
	return false, nil
}

// finishForeground removes the foregroundDeletion finalizer from owner once
// no dependent blocks it, and otherwise pushes the blocking dependents.
func (c *Controller) finishForeground(ctx context.Context, id objectID, owner *metav1.PartialObjectMetadata) error {
	blocking := blockingDependents(id.UID, c.graph.dependentsOf(id.UID))
	if len(blocking) == 0 {
		if err := c.patch(ctx, id, removeFinalizerPatch(owner, metav1.FinalizerDeleteDependents)); err != nil {
			return fmt.Errorf("remove finalizer %s: %w", metav1.FinalizerDeleteDependents, err)
		}
		c.logger.Info("dependents gone, finished foreground deletion", "object", id.String())
		return nil
	}
	for _, d := range blocking {
		if !d.deletingDependents() {
			c.queue.Add(workItem{d.id.UID, actDelete})
		}
	}
	return nil
}

// orphan strips the owner uid from every dependent, then its orphan finalizer.
func (c *Controller) orphan(ctx context.Context, uid types.UID) error {
	n, ok := c.graph.get(uid)
	if !ok {
		return nil
	}
	owner, err := c.get(ctx, n.id)
	if errors.Is(err, errNotServed) {
		return nil
	}
	if err != nil || owner == nil {
		return err
	}
	if owner.DeletionTimestamp == nil || !hasFinalizer(owner, metav1.FinalizerOrphanDependents) {
		return nil
	}
	for _, d := range c.graph.dependentsOf(uid) {
		dep, err := c.get(ctx, d.id)
		if errors.Is(err, errNotServed) {
			continue
		}
		if err != nil {
			return err
		}
		if dep == nil {
			continue
		}
		if err := c.patch(ctx, d.id, removeOwnersPatch(dep, []types.UID{uid})); err != nil {
			return fmt.Errorf("orphan %s: %w", d.id, err)
		}
	}
	if err := c.patch(ctx, n.id, removeFinalizerPatch(owner, metav1.FinalizerOrphanDependents)); err != nil {
		return fmt.Errorf("remove finalizer %s: %w", metav1.FinalizerOrphanDependents, err)
	}
	c.logger.Info("orphaned dependents", "object", n.id.String())
	return nil
}

// ownerState looks up the owner ref names, as seen from dependent dep.
// observed reports whether the graph has seen that owner.
func (c *Controller) ownerState(ctx context.Context, dep objectID, ref metav1.OwnerReference) (st ownerState, observed bool, err error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return ownerAlive, true, nil
	}
	r, ok := c.resolve(schema.GroupKind{Group: gv.Group, Kind: ref.Kind})
	if !ok {
		// An owner of a kind never served gets no dependent deleted; if the
		// kind becomes served, SetResources brings the dependent back.
		c.logger.Debug("owner kind not watched", "object", dep.String(), "owner", ref.APIVersion+"/"+ref.Kind)
		return ownerAlive, true, nil
	}
	id := objectID{GVR: r.GVR, Name: ref.Name, UID: ref.UID}
	if r.Namespaced {
		if dep.Namespace == "" {
			// A cluster-scoped object cannot have a namespaced owner;
			// Kubernetes leaves such objects alone too.
			return ownerAlive, true, nil
		}
		id.Namespace = dep.Namespace
	}
	if c.absent.has(id) {
		return ownerAbsent, true, nil
	}
	if c.graph.alive(id) {
		// Nothing would be done on this answer, so the cache is enough: if
		// the owner is in fact gone, its delete event brings us back.
		return ownerAlive, true, nil
	}
	owner, err := c.get(ctx, id)
	if errors.Is(err, errNotServed) && !r.served {
		// A kind no longer served resolves to its last resource, which the
		// server no longer has: no object of it exists, the owner is absent.
		// While the kind counts as served, such an answer only means that
		// the kinds are stale (a version just dropped): retry.
		err = nil
	}
	if err != nil {
		return ownerAlive, false, err
	}
	if owner == nil {
		c.absent.add(id)
		return ownerAbsent, true, nil
	}
	if owner.DeletionTimestamp != nil && hasFinalizer(owner, metav1.FinalizerDeleteDependents) {
		return ownerWaiting, true, nil
	}
	return ownerAlive, c.graph.observed(ref.UID, id.Namespace), nil
}

// errNotServed is a 404 for the resource rather than for the object.
var errNotServed = errors.New("resource not served")

// get reads id live; it returns nil when no object with that uid exists, and
// errNotServed when the server does not serve id's resource.
func (c *Controller) get(ctx context.Context, id objectID) (*metav1.PartialObjectMetadata, error) {
	obj, err := c.client.Resource(id.GVR).Namespace(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if notServed(err) {
			return nil, fmt.Errorf("get %s: %w", id, errNotServed)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if obj.UID != id.UID {
		return nil, nil
	}
	return obj, nil
}

// notServed tells a 404 for an unknown path, which names no object, from
// one for a missing object of a served resource.
func notServed(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || d.Name == ""
}

func (c *Controller) patch(ctx context.Context, id objectID, patch []byte) error {
	if patch == nil {
		return nil
	}
	_, err := c.client.Resource(id.GVR).Namespace(id.Namespace).Patch(ctx, id.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	return nil
}

func (c *Controller) delete(ctx context.Context, id objectID, policy metav1.DeletionPropagation) error {
	uid := id.UID
	err := c.client.Resource(id.GVR).Namespace(id.Namespace).Delete(ctx, id.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	// Conflict: the uid precondition failed, the name now holds another object.
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}
