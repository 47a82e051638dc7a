package statefulset

import (
	"context"
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("statefulset key %q: %w", key, err)
	}
	set, err := c.setLister.StatefulSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get statefulset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation refuses it; retrying cannot help.
		c.logger.Error("invalid selector", "statefulset", key, "err", err)
		return nil
	}
	revs, err := c.claimRevisions(ctx, set, selector)
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return err
	}

	collisionCount := int32(0)
	if set.Status.CollisionCount != nil {
		collisionCount = *set.Status.CollisionCount
	}
	current, update, err := c.revisions(ctx, set, revs, &collisionCount)
	if err != nil {
		// A collision is written to status so the next sync uses a new name.
		if set.Status.CollisionCount == nil || collisionCount != *set.Status.CollisionCount {
			st := set.Status.DeepCopy()
			st.CollisionCount = &collisionCount
			return errors.Join(err, c.updateStatus(ctx, set, st))
		}
		return err
	}
	currentSet, err := applyRevision(set, current)
	if err != nil {
		return err
	}
	updateSet, err := applyRevision(set, update)
	if err != nil {
		return err
	}

	r := &round{c: c, set: set, currentSet: currentSet, updateSet: updateSet, current: current.Name, update: update.Name, now: c.now()}
	var manageErr error
	if set.DeletionTimestamp == nil {
		manageErr = r.manage(ctx, pods)
	}
	status := r.status(pods, collisionCount)
	if err := c.updateStatus(ctx, set, status); err != nil {
		return errors.Join(manageErr, err)
	}
	if manageErr != nil {
		return manageErr
	}
	if err := c.truncateHistory(ctx, set, pods, revs, current, update); err != nil {
		return err
	}
	// Pods ready but not yet available for minReadySeconds become available
	// without an event.
	if set.Spec.MinReadySeconds > 0 && status.AvailableReplicas < status.ReadyReplicas {
		c.queue.AddAfter(key, c.minReadyRecheck(set))
	}
	return nil
}

// claimPods returns the pods set controls: members (named <set>-<n>) it owns
// or adopts, after releasing owned pods that stopped matching.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*v1.Pod, error) {
	all, err := c.podLister.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods for statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	var members []*v1.Pod
	for _, p := range all {
		if isMemberOf(set, p) {
			members = append(members, p)
		}
	}
	claimer := &controllerutil.Claimer{
		Owner:    set,
		OwnerGVK: controllerKind,
		Selector: selector,
		CanAdopt: c.canAdopt(set),
		Patch: func(ctx context.Context, obj metav1.Object, patch []byte) error {
			_, err := c.client.CoreV1().Pods(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	}
	claimed, err := controllerutil.ClaimAll(ctx, claimer, members)
	if err != nil {
		return nil, fmt.Errorf("claim pods for statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	return claimed, nil
}

// claimRevisions returns the ControllerRevisions set controls, adopting
// matching orphans (a set deleted with --cascade=orphan and recreated finds
// its history again).
func (c *Controller) claimRevisions(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	all, err := c.revisionLister.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list revisions for statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	claimed, err := controllerutil.ClaimRevisions(ctx, c.client.AppsV1(), set, controllerKind, selector, c.canAdopt(set), all)
	if err != nil {
		return nil, fmt.Errorf("claim revisions for statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	// The lister's objects are shared: copy before sorting or editing.
	out := make([]*appsv1.ControllerRevision, len(claimed))
	for i, r := range claimed {
		out[i] = r.DeepCopy()
	}
	return out, nil
}

func (c *Controller) canAdopt(set *appsv1.StatefulSet) func(context.Context) error {
	return controllerutil.RecheckDeletion(set, func(ctx context.Context) (metav1.Object, error) {
		return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	})
}

// updateStatus writes status if it changed, retrying once on a conflict
// with a fresh read.
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	if apiequality.Semantic.DeepEqual(&set.Status, status) {
		return nil
	}
	next := set.DeepCopy()
	for attempt := 0; ; attempt++ {
		next.Status = *status
		_, err := c.client.AppsV1().StatefulSets(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt > 0 {
			return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
		}
		fresh, getErr := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, getErr)
		}
		if fresh.UID != set.UID {
			return nil
		}
		next = fresh
	}
}

// sortByOrdinal sorts pods by ordinal, ascending.
func sortByOrdinal(pods []*v1.Pod) {
	slices.SortFunc(pods, func(a, b *v1.Pod) int { return ordinalOf(a) - ordinalOf(b) })
}
