package gc

import (
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The collector edits lists in metadata with JSON patches (RFC 6902) whose
// every removal is guarded by a "test" of the entry it removes and of the
// object's uid. A concurrent writer then makes the patch fail (and the item
// retry) instead of removing the wrong entry, without relying on
// resourceVersion preconditions or strategic merge support on the server.

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

func testOp(path string, v any) patchOp {
	b, _ := json.Marshal(v) // strings and bools always marshal
	return patchOp{Op: "test", Path: path, Value: b}
}

// removeOwnersPatch removes the references to owners from obj. It returns
// nil when obj has none of them.
func removeOwnersPatch(obj metav1.Object, owners []types.UID) []byte {
	refs := obj.GetOwnerReferences()
	ops := []patchOp{testOp("/metadata/uid", obj.GetUID())}
	// From the end, so the indices of earlier entries stay valid.
	for i := len(refs) - 1; i >= 0; i-- {
		if !slices.Contains(owners, refs[i].UID) {
			continue
		}
		p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
		ops = append(ops, testOp(p+"/uid", refs[i].UID), patchOp{Op: "remove", Path: p})
	}
	return marshalOps(ops)
}

// removeFinalizerPatch removes finalizer f from obj, or returns nil if absent.
func removeFinalizerPatch(obj metav1.Object, f string) []byte {
	fins := obj.GetFinalizers()
	ops := []patchOp{testOp("/metadata/uid", obj.GetUID())}
	for i := len(fins) - 1; i >= 0; i-- {
		if fins[i] != f {
			continue
		}
		p := fmt.Sprintf("/metadata/finalizers/%d", i)
		ops = append(ops, testOp(p, f), patchOp{Op: "remove", Path: p})
	}
	return marshalOps(ops)
}

// unblockPatch sets blockOwnerDeletion=false on every reference of obj that
// blocks its owner, or returns nil if none does.
func unblockPatch(obj metav1.Object) []byte {
	refs := obj.GetOwnerReferences()
	ops := []patchOp{testOp("/metadata/uid", obj.GetUID())}
	for i, ref := range refs {
		if !blocks(ref) {
			continue
		}
		p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
		ops = append(ops, testOp(p+"/uid", ref.UID),
			patchOp{Op: "add", Path: p + "/blockOwnerDeletion", Value: json.RawMessage("false")})
	}
	return marshalOps(ops)
}

// marshalOps returns nil when ops hold nothing but the uid guard.
func marshalOps(ops []patchOp) []byte {
	if len(ops) <= 1 {
		return nil
	}
	b, _ := json.Marshal(ops) // plain strings and raw JSON cannot fail
	return b
}
