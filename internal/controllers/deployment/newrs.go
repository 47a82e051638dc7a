package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// getAllReplicaSetsAndSyncRevision returns d's new ReplicaSet (creating it
// if asked and missing) with its revision brought to max(old)+1, and all
// old ReplicaSets. The Deployment's revision annotation follows the new
// ReplicaSet's.
func (c *Controller) getAllReplicaSetsAndSyncRevision(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	oldRSs := findOldReplicaSets(d, rsList)
	newRS, err := c.getNewReplicaSet(ctx, d, rsList, oldRSs, create)
	if err != nil {
		return nil, nil, err
	}
	return newRS, oldRSs, nil
}

func (c *Controller) getNewReplicaSet(ctx context.Context, d *appsv1.Deployment, rsList, oldRSs []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	existing := findNewReplicaSet(d, rsList)
	newRevision := strconv.FormatInt(maxRevision(oldRSs)+1, 10)
	now := metav1.NewTime(c.now())

	if existing != nil {
		rs := existing.DeepCopy()
		annotationsChanged := setNewReplicaSetAnnotations(d, rs, newRevision, true, maxRevHistoryLengthInChars)
		if annotationsChanged || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			updated, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				return nil, fmt.Errorf("update new replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			// Later steps of this sync start from rsList again; let them
			// see this write rather than conflict with it.
			replaceInList(rsList, updated)
			return updated, nil
		}
		if err := c.setRevision(ctx, d, rs.Annotations[annRevision]); err != nil {
			return nil, err
		}
		// A Deployment without a Progressing condition starts counting
		// toward its deadline from the first time we see its new RS.
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, reasonFoundNewReplicaSet,
				fmt.Sprintf("Found new replica set %q", rs.Name), now))
			if err := c.updateStatus(ctx, d); err != nil {
				return nil, err
			}
		}
		return rs, nil
	}
	if !create {
		return nil, nil
	}

	template := d.Spec.Template.DeepCopy()
	hash := computeHash(template, d.Status.CollisionCount)
	template.Labels = withLabel(template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels = withLabel(selector.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			// Deterministic, so a retry after a lost response finds it
			// (AlreadyExists) instead of creating a second one.
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Labels:          template.Labels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        *template,
		},
	}
	replicas, err := newRSNewReplicas(d, withNew(oldRSs, rs), rs)
	if err != nil {
		return nil, err
	}
	rs.Spec.Replicas = &replicas
	setNewReplicaSetAnnotations(d, rs, newRevision, false, maxRevHistoryLengthInChars)

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExists := false
	switch {
	case apierrors.IsAlreadyExists(err):
		alreadyExists = true
		found, getErr := c.rsLister.ReplicaSets(rs.Namespace).Get(rs.Name)
		if apierrors.IsNotFound(getErr) {
			// Created by the previous sync, not in the cache yet.
			found, getErr = c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		}
		if getErr != nil {
			return nil, fmt.Errorf("new replicaset %s/%s exists but cannot be read: %w", rs.Namespace, rs.Name, getErr)
		}
		// Ours with d's template: created by an earlier sync whose write
		// the cache had not shown yet.
		if ref := metav1.GetControllerOf(found); ref != nil && ref.UID == d.UID && equalIgnoreHash(&d.Spec.Template, &found.Spec.Template) {
			created = found
			break
		}
		// Someone else's, or another template with the same hash: bump
		// collisionCount so the next sync computes another name.
		if d.Status.CollisionCount == nil {
			d.Status.CollisionCount = new(int32)
		}
		*d.Status.CollisionCount++
		if uerr := c.updateStatus(ctx, d); uerr == nil {
			c.logger.Info("hash collision, bumped collisionCount", "deployment", keyOf(d.Namespace, d.Name), "collisionCount", *d.Status.CollisionCount)
		}
		return nil, fmt.Errorf("create new replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	case apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause):
		return nil, fmt.Errorf("create new replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionFalse, reasonFailedRSCreate, msg, now))
			// The create failure is the error worth returning.
			_ = c.updateStatus(ctx, d)
		}
		c.recorder.Event(d, v1.EventTypeWarning, reasonFailedRSCreate, msg)
		return nil, fmt.Errorf("create new replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	if !alreadyExists && replicas > 0 {
		c.recorder.Eventf(d, v1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, replicas)
	}

	if err := c.setRevision(ctx, d, newRevision); err != nil {
		return created, err
	}
	if !alreadyExists && hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, reasonNewReplicaSetCreated,
			fmt.Sprintf("Created new replica set %q", created.Name), now))
		if err := c.updateStatus(ctx, d); err != nil {
			return created, err
		}
	}
	return created, nil
}

// setRevision records revision in d's revision annotation (kubectl rollout
// history reads it). Kubernetes sends it along with a status write, which
// its Deployment status strategy lets through; a status subresource that
// keeps metadata, like Wharf's, would drop it. A merge patch of the main
// resource works with both; it carries d's resourceVersion so that it
// applies to the Deployment this sync is looking at, or conflicts.
func (c *Controller) setRevision(ctx context.Context, d *appsv1.Deployment, revision string) error {
	if d.Annotations[annRevision] == revision {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": d.ResourceVersion,
		"annotations":     map[string]string{annRevision: revision},
	}})
	if err != nil {
		return fmt.Errorf("revision patch: %w", err)
	}
	updated, err := c.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("set revision %s of deployment %s/%s: %w", revision, d.Namespace, d.Name, err)
	}
	setDeploymentRevision(d, revision)
	d.ResourceVersion = updated.ResourceVersion
	return nil
}

// withLabel returns a copy of m with key=value.
func withLabel(m map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
}

// replaceInList swaps rs for its older copy (same uid) in list.
func replaceInList(list []*appsv1.ReplicaSet, rs *appsv1.ReplicaSet) {
	for i := range list {
		if list[i].UID == rs.UID {
			list[i] = rs
		}
	}
}
