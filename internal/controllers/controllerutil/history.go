package controllerutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
)

// The ControllerRevision ("history") pieces that the DaemonSet and
// StatefulSet controllers share, as Kubernetes' pkg/controller/history.
// What each controller does differently stays with it: the revision hash
// (DaemonSets hash the template with ComputeHash, StatefulSets hash the
// revision data), the revision's labels, how a hash collision is recorded
// in status and which old revisions are pruned.

// TemplatePatch returns what a ControllerRevision of a DaemonSet or
// StatefulSet stores, as upstream's getPatch: a strategic merge patch that
// puts template back whole ({"spec":{"template":{...,"$patch":"replace"}}}).
// kubectl rollout history applies it to show a revision and rollout undo
// sends it to the owner as it is; equal patches mean equal templates.
func TemplatePatch(template *v1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	t["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": t}})
}

// MaxRevision returns the highest Revision among revs, 0 for none
// (revisions are never negative), so that a new revision is numbered
// MaxRevision(revs)+1.
func MaxRevision(revs []*appsv1.ControllerRevision) int64 {
	var n int64
	for _, r := range revs {
		n = max(n, r.Revision)
	}
	return n
}

// ClaimRevisions returns those of all (the owner's namespace's
// ControllerRevisions, usually from a lister) that owner controls, after
// adopting matching orphans and releasing owned ones that stopped matching,
// through ownerReference patches sent with revisions.
func ClaimRevisions(ctx context.Context, revisions appsv1client.ControllerRevisionsGetter, owner metav1.Object, ownerGVK schema.GroupVersionKind, selector labels.Selector, canAdopt func(context.Context) error, all []*appsv1.ControllerRevision) ([]*appsv1.ControllerRevision, error) {
	claimer := &Claimer{
		Owner:    owner,
		OwnerGVK: ownerGVK,
		Selector: selector,
		CanAdopt: canAdopt,
		Patch: func(ctx context.Context, obj metav1.Object, patch []byte) error {
			_, err := revisions.ControllerRevisions(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	}
	return ClaimAll(ctx, claimer, all)
}

// CreateRevision creates rev, whose name is derived from a hash. If the
// name is taken, the existing revision is returned when owner controls it
// and it holds the same data (ours, not yet in the cache). Otherwise the
// name is a hash collision: CreateRevision returns collision true with the
// AlreadyExists error, and the caller raises its collisionCount so that the
// next attempt hashes to another name.
func CreateRevision(ctx context.Context, revisions appsv1client.ControllerRevisionsGetter, owner metav1.Object, rev *appsv1.ControllerRevision) (_ *appsv1.ControllerRevision, collision bool, _ error) {
	created, err := revisions.ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
	if err == nil {
		return created, false, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("create revision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	existing, getErr := revisions.ControllerRevisions(rev.Namespace).Get(ctx, rev.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, false, fmt.Errorf("get revision %s/%s: %w", rev.Namespace, rev.Name, getErr)
	}
	if metav1.IsControlledBy(existing, owner) && bytes.Equal(existing.Data.Raw, rev.Data.Raw) {
		return existing, false, nil
	}
	return nil, true, err
}
