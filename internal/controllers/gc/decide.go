package gc

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what a live lookup found for one ownerReference. The zero
// value is ownerAlive, so a reference that was not classified keeps its
// dependent: the collector errs on the side of not deleting.
type ownerState int

const (
	ownerAlive   ownerState = iota // exists (or cannot be checked)
	ownerAbsent                    // no object with that uid: the reference dangles
	ownerWaiting                   // in foreground deletion, waiting for its dependents
)

// verdict is what to do with a dependent that is not being deleted.
type verdict struct {
	// RemoveOwners are references to patch away (the object keeps a live owner).
	RemoveOwners []types.UID
	// Unblock clears blockOwnerDeletion on the object's own references
	// before a foreground delete, to break a cycle of foreground deletions.
	Unblock bool
	Delete  bool
	Policy  metav1.DeletionPropagation
}

// decideDependent mirrors Kubernetes' attemptToDeleteItem: an object with a
// live owner stays (minus dangling references); one whose owners are all
// gone is deleted with the policy its own finalizers ask for; one whose
// owner waits in foreground deletion is deleted, in foreground too when it
// has dependents itself so that the wait is transitive.
func decideDependent(obj metav1.Object, owners map[types.UID]ownerState, deps []node) verdict {
	refs := obj.GetOwnerReferences()
	if len(refs) == 0 {
		return verdict{}
	}
	var alive, absent, waiting []types.UID
	for _, ref := range refs {
		switch owners[ref.UID] {
		case ownerAbsent:
			absent = append(absent, ref.UID)
		case ownerWaiting:
			waiting = append(waiting, ref.UID)
		default:
			alive = append(alive, ref.UID)
		}
	}
	switch {
	case len(alive) > 0:
		return verdict{RemoveOwners: append(absent, waiting...)}
	case len(waiting) > 0 && len(deps) > 0:
		v := verdict{Delete: true, Policy: metav1.DeletePropagationForeground}
		for _, d := range deps {
			if d.deletingDependents() {
				v.Unblock = true
				break
			}
		}
		return v
	}
	fins := obj.GetFinalizers()
	switch {
	case slices.Contains(fins, metav1.FinalizerOrphanDependents):
		return verdict{Delete: true, Policy: metav1.DeletePropagationOrphan}
	case slices.Contains(fins, metav1.FinalizerDeleteDependents):
		return verdict{Delete: true, Policy: metav1.DeletePropagationForeground}
	}
	return verdict{Delete: true, Policy: metav1.DeletePropagationBackground}
}

// blockingDependents returns the dependents whose reference to owner has
// blockOwnerDeletion: an owner in foreground deletion waits for these.
func blockingDependents(owner types.UID, deps []node) []node {
	var out []node
	for _, d := range deps {
		for _, ref := range d.owners {
			if ref.UID == owner && blocks(ref) {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

func hasFinalizer(obj metav1.Object, f string) bool {
	return slices.Contains(obj.GetFinalizers(), f)
}
