package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// slowStartInitialBatch is the first batch of pod creations; batches double
// while they succeed, so a create that fails (quota, admission) fails once,
// not spec.replicas times.
const slowStartInitialBatch = 1

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("replicaset key %q: %w", key, err)
	}
	rs, err := c.rsLister.ReplicaSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.Delete(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get replicaset %s: %w", key, err)
	}
	// Read before listing pods: creations observed between the two would
	// otherwise look satisfied against a pod list that lacks them.
	needsSync := c.expectations.Satisfied(key)

	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// Validation should have refused it; retrying cannot help.
		c.logger.Error("invalid selector", "replicaset", key, "err", err)
		return nil
	}
	// All pods, not only matching ones: owned pods that stopped matching
	// must be seen to be released.
	all, err := c.podLister.Pods(namespace).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods for replicaset %s: %w", key, err)
	}
	pods, err := c.claimPods(ctx, rs, selector, controllerutil.FilterActivePods(all))
	if err != nil {
		return err
	}
	terminating := countTerminating(rs, selector, all)

	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, pods, rs)
	}
	now := c.now()
	status, availableIn := calculateStatus(rs, pods, manageErr, now)
	status.TerminatingReplicas = &terminating
	if err := c.updateStatus(ctx, rs.DeepCopy(), status); err != nil {
		return errors.Join(manageErr, err)
	}
	// Pods that are ready but not yet available for minReadySeconds become
	// available without any event: come back when the first one does.
	if manageErr == nil && availableIn > 0 {
		c.queue.AddAfter(key, availableIn)
	}
	return manageErr
}

func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*v1.Pod) ([]*v1.Pod, error) {
	claimer := &controllerutil.Claimer{
		Owner:    rs,
		OwnerGVK: controllerKind,
		Selector: selector,
		CanAdopt: controllerutil.RecheckDeletion(rs, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		}),
		Patch: c.pods.PatchPod,
	}
	claimed, err := controllerutil.ClaimAll(ctx, claimer, pods)
	if err != nil {
		return nil, fmt.Errorf("claim pods for replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return claimed, nil
}

// manageReplicas creates or deletes pods to reach spec.replicas. pods are
// the active pods rs controls; they come from the cache and are not modified.
func (c *Controller) manageReplicas(ctx context.Context, pods []*v1.Pod, rs *appsv1.ReplicaSet) error {
	key := keyOf(rs.Namespace, rs.Name)
	diff := len(pods) - int(wantReplicas(rs))
	switch {
	case diff < 0:
		n := min(-diff, c.burst)
		// Expect all creations before issuing any, so an informer event
		// arriving mid-batch is accounted for.
		c.expectations.ExpectCreations(key, n)
		c.logger.Debug("too few replicas", "replicaset", key, "want", wantReplicas(rs), "creating", n)
		done, err := slowStartBatch(n, slowStartInitialBatch, func() error {
			return c.pods.CreatePod(ctx, rs, podFromTemplate(rs))
		})
		// Creations never attempted will never be observed.
		for range n - done {
			c.expectations.CreationObserved(key)
		}
		return err
	case diff > 0:
		n := min(diff, c.burst)
		c.logger.Debug("too many replicas", "replicaset", key, "want", wantReplicas(rs), "deleting", n)
		victims := podsToDelete(pods, c.relatedPods(rs), n)
		podKeys := make([]string, len(victims))
		for i, p := range victims {
			podKeys[i] = keyOf(p.Namespace, p.Name)
		}
		c.expectations.ExpectDeletions(key, podKeys)
		errCh := make(chan error, n)
		var wg sync.WaitGroup
		for i, pod := range victims {
			wg.Go(func() {
				if err := c.pods.DeletePod(ctx, rs, pod); err != nil {
					// This deletion will never be observed.
					c.expectations.DeletionObserved(key, podKeys[i])
					if !apierrors.IsNotFound(err) {
						errCh <- err
					}
				}
			})
		}
		wg.Wait()
		close(errCh)
		// They are likely the same error; report one.
		return <-errCh
	}
	return nil
}

// wantReplicas is spec.replicas; a ReplicaSet stored without defaults means
// 1, as the API default.
func wantReplicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// slowStartBatch calls fn count times in batches of 1, 2, 4, …, each batch
// in parallel, and stops after the first batch with a failure. It returns
// how many calls succeeded and the first error.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, successes := count, 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					errCh <- err
				}
			})
		}
		wg.Wait()
		successes += batch - len(errCh)
		if len(errCh) > 0 {
			return successes, <-errCh
		}
		remaining -= batch
	}
	return successes, nil
}

// countTerminating counts the pods rs owns that are being deleted but not
// yet gone (status.terminatingReplicas): they still run and use resources.
func countTerminating(rs *appsv1.ReplicaSet, selector labels.Selector, pods []*v1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if p.DeletionTimestamp == nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == rs.UID && selector.Matches(labels.Set(p.Labels)) {
			n++
		}
	}
	return n
}

// relatedPods returns the pods of every ReplicaSet with the same controller
// as rs (its Deployment's other revisions), used to spread deletions across
// nodes.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*v1.Pod {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return nil
	}
	all, err := c.rsLister.ReplicaSets(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	seen := make(map[types.UID]bool)
	var out []*v1.Pod
	for _, other := range all {
		if oref := metav1.GetControllerOf(other); oref == nil || oref.UID != ref.UID {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(other.Spec.Selector)
		if err != nil {
			continue
		}
		pods, err := c.podLister.Pods(other.Namespace).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if !seen[p.UID] {
				seen[p.UID] = true
				out = append(out, p)
			}
		}
	}
	return out
}
