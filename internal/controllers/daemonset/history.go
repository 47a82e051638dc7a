package daemonset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// constructHistory returns the revision of ds's current template (created
// if missing, renumbered to be the newest) and the older ones, claiming
// matching orphans as upstream's constructHistory.
func (c *Controller) constructHistory(ctx context.Context, ds *appsv1.DaemonSet) (cur *appsv1.ControllerRevision, old []*appsv1.ControllerRevision, err error) {
	histories, err := c.controlledHistories(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	patch, err := controllerutil.TemplatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal template of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	var current []*appsv1.ControllerRevision
	for _, h := range histories {
		if _, ok := h.Labels[labelRevisionHash]; !ok {
			// Revisions are told apart by this label; one made by
			// someone else gets its name as the hash, as upstream.
			update := h.DeepCopy()
			if update.Labels == nil {
				update.Labels = map[string]string{}
			}
			update.Labels[labelRevisionHash] = update.Name
			if h, err = c.client.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, update, metav1.UpdateOptions{}); err != nil {
				return nil, nil, fmt.Errorf("label revision %s/%s: %w", update.Namespace, update.Name, err)
			}
		}
		if bytes.Equal(h.Data.Raw, patch) {
			current = append(current, h)
		} else {
			old = append(old, h)
		}
	}
	next := controllerutil.MaxRevision(old) + 1
	if len(current) == 0 {
		cur, err = c.snapshot(ctx, ds, patch, next)
		return cur, old, err
	}
	cur, err = c.dedupCurrent(ctx, ds, current)
	if err != nil {
		return nil, nil, err
	}
	if cur.Revision < next {
		// An undo back to this template: it becomes the newest revision.
		update := cur.DeepCopy()
		update.Revision = next
		if cur, err = c.client.AppsV1().ControllerRevisions(ds.Namespace).Update(ctx, update, metav1.UpdateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("renumber revision %s/%s: %w", update.Namespace, update.Name, err)
		}
	}
	return cur, old, nil
}

// controlledHistories returns the ControllerRevisions ds controls, after
// adopting matching orphans and releasing owned ones that stopped matching.
func (c *Controller) controlledHistories(ctx context.Context, ds *appsv1.DaemonSet) ([]*appsv1.ControllerRevision, error) {
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	all, err := c.historyLister.ControllerRevisions(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	claimed, err := controllerutil.ClaimRevisions(ctx, c.client.AppsV1(), ds, controllerKind, selector, c.recheckDeletion(ds), all)
	if err != nil {
		return nil, fmt.Errorf("claim revisions of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return claimed, nil
}

func (c *Controller) recheckDeletion(ds *appsv1.DaemonSet) func(context.Context) error {
	return controllerutil.RecheckDeletion(ds, func(ctx context.Context) (metav1.Object, error) {
		return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	})
}

// snapshot creates the revision of ds's current template, named after its
// hash. A name taken by another template is a hash collision: the
// DaemonSet's collisionCount goes up and the next sync hashes anew.
func (c *Controller) snapshot(ctx context.Context, ds *appsv1.DaemonSet, patch []byte, revision int64) (*appsv1.ControllerRevision, error) {
	hash := controllerutil.ComputeHash(&ds.Spec.Template, ds.Status.CollisionCount)
	lbls := make(map[string]string, len(ds.Spec.Template.Labels)+1)
	for k, v := range ds.Spec.Template.Labels {
		lbls[k] = v
	}
	lbls[labelRevisionHash] = hash
	h := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ds.Name + "-" + hash,
			Namespace:       ds.Namespace,
			Labels:          lbls,
			Annotations:     ds.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Data:     runtime.RawExtension{Raw: patch},
		Revision: revision,
	}
	created, collision, err := controllerutil.CreateRevision(ctx, c.client.AppsV1(), ds, h)
	if !collision {
		return created, err
	}
	fresh, getErr := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if getErr != nil {
		return nil, fmt.Errorf("get daemonset %s/%s: %w", ds.Namespace, ds.Name, getErr)
	}
	if !equalCounts(fresh.Status.CollisionCount, ds.Status.CollisionCount) {
		return nil, fmt.Errorf("daemonset %s/%s: stale collision count, retrying", ds.Namespace, ds.Name)
	}
	n := int32(0)
	if fresh.Status.CollisionCount != nil {
		n = *fresh.Status.CollisionCount
	}
	n++
	fresh.Status.CollisionCount = &n
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("bump collision count of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	c.logger.Info("revision hash collision, collisionCount bumped", "daemonset", keyOf(ds.Namespace, ds.Name), "count", n)
	return nil, fmt.Errorf("revision %s/%s: hash collision: %w", h.Namespace, h.Name, err)
}

func equalCounts(a, b *int32) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// dedupCurrent keeps the newest of several revisions of the current
// template, relabels the pods of the others with its hash and deletes them.
func (c *Controller) dedupCurrent(ctx context.Context, ds *appsv1.DaemonSet, current []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	if len(current) == 1 {
		return current[0], nil
	}
	keep := current[0]
	for _, h := range current[1:] {
		if h.Revision > keep.Revision {
			keep = h
		}
	}
	pods, err := c.podLister.Pods(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, h := range current {
		if h == keep {
			continue
		}
		for _, pod := range pods {
			if !metav1.IsControlledBy(pod, ds) || pod.Labels[labelRevisionHash] != h.Labels[labelRevisionHash] {
				continue
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{labelRevisionHash: keep.Labels[labelRevisionHash]}}})
			if err := c.pods.PatchPod(ctx, pod, patch); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("relabel pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		}
		if err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, h.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete duplicate revision %s/%s: %w", h.Namespace, h.Name, err)
		}
	}
	return keep, nil
}

// cleanupHistory deletes the oldest revisions beyond revisionHistoryLimit,
// never one a live pod still runs.
func (c *Controller) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, nodePods map[string][]*v1.Pod, old []*appsv1.ControllerRevision) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	toKill := len(old) - limit
	if toKill <= 0 {
		return nil
	}
	live := map[string]bool{}
	for _, pods := range nodePods {
		for _, pod := range pods {
			if h := pod.Labels[labelRevisionHash]; h != "" {
				live[h] = true
			}
		}
	}
	sorted := append([]*appsv1.ControllerRevision(nil), old...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Revision < sorted[j].Revision })
	var errs []error
	for _, h := range sorted {
		if toKill <= 0 {
			break
		}
		if live[h.Labels[labelRevisionHash]] {
			continue
		}
		if err := c.client.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, h.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete revision %s/%s: %w", h.Namespace, h.Name, err))
		}
		toKill--
	}
	return errors.Join(errs...)
}
