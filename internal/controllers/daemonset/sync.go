package daemonset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/resources"
)

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("daemonset key %q: %w", key, err)
	}
	ds, err := c.dsLister.DaemonSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.Delete(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get daemonset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		c.recorder.Event(ds, v1.EventTypeWarning, reasonSelectingAll, "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	if ds.DeletionTimestamp != nil {
		// The garbage collector deletes its pods and revisions.
		return nil
	}
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes for daemonset %s: %w", key, err)
	}
	cur, old, err := c.constructHistory(ctx, ds)
	if err != nil {
		return fmt.Errorf("construct history of daemonset %s: %w", key, err)
	}
	hash := cur.Labels[labelRevisionHash]

	if !c.expectations.Satisfied(key) {
		// Only status: observedGeneration stays, this generation was not
		// acted on.
		nodePods, err := c.nodesToDaemonPods(ctx, ds, selector)
		if err != nil {
			return err
		}
		return c.updateStatus(ctx, ds, nodes, nodePods, hash, false)
	}

	syncErr := c.manage(ctx, ds, selector, nodes, hash)
	if syncErr == nil && c.expectations.Satisfied(key) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		syncErr = c.rollingUpdate(ctx, ds, selector, nodes, hash)
	}
	nodePods, err := c.nodesToDaemonPods(ctx, ds, selector)
	if err != nil {
		return errors.Join(syncErr, err)
	}
	if err := c.cleanupHistory(ctx, ds, nodePods, old); err != nil {
		syncErr = errors.Join(syncErr, err)
	}
	return errors.Join(syncErr, c.updateStatus(ctx, ds, nodes, nodePods, hash, true))
}

// nodesToDaemonPods claims ds's pods and groups them by target node.
// Terminal pods already being deleted are left out: they are gone as far
// as placement goes.
func (c *Controller) nodesToDaemonPods(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector) (map[string][]*v1.Pod, error) {
	all, err := c.podLister.Pods(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	claimer := &controllerutil.Claimer{
		Owner:    ds,
		OwnerGVK: controllerKind,
		Selector: selector,
		CanAdopt: c.recheckDeletion(ds),
		Patch:    c.pods.PatchPod,
	}
	claimed, err := controllerutil.ClaimAll(ctx, claimer, all)
	if err != nil {
		return nil, fmt.Errorf("claim pods of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	out := map[string][]*v1.Pod{}
	for _, pod := range claimed {
		if pod.DeletionTimestamp != nil && isTerminal(pod) {
			continue
		}
		node, ok := targetNodeName(pod)
		if !ok {
			c.logger.Warn("daemon pod has no target node", "pod", keyOf(pod.Namespace, pod.Name))
			continue
		}
		out[node] = append(out[node], pod)
	}
	return out, nil
}

func isTerminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodFailed || pod.Status.Phase == v1.PodSucceeded
}

// manage creates the pods of nodes that should run ds and have none, and
// deletes pods that should not be where they are.
func (c *Controller) manage(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector, nodes []*v1.Node, hash string) error {
	nodePods, err := c.nodesToDaemonPods(ctx, ds, selector)
	if err != nil {
		return err
	}
	var create []string
	var remove []*v1.Pod
	known := make(map[string]bool, len(nodes))
	for _, node := range nodes {
		known[node.Name] = true
		n, d := c.podsShouldBeOnNode(ds, node, nodePods[node.Name], hash)
		create = append(create, n...)
		remove = append(remove, d...)
	}
	// Unbound pods for nodes that are gone would wait forever; bound ones
	// are the pod garbage collector's.
	for node, pods := range nodePods {
		if known[node] {
			continue
		}
		for _, pod := range pods {
			if pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil {
				remove = append(remove, pod)
			}
		}
	}
	return c.syncNodes(ctx, ds, remove, create, hash)
}

// podsShouldBeOnNode is upstream's decision for one node: create a pod, or
// delete some (failed ones with back-off, extras, all of them when the
// node no longer fits).
func (c *Controller) podsShouldBeOnNode(ds *appsv1.DaemonSet, node *v1.Node, pods []*v1.Pod, hash string) (create []string, remove []*v1.Pod) {
	shouldRun, shouldContinue := nodeShouldRunDaemonPod(node, ds)
	exists := len(pods) > 0
	switch {
	case shouldRun && !exists:
		create = append(create, node.Name)
	case shouldContinue:
		var running []*v1.Pod
		for _, pod := range pods {
			if pod.DeletionTimestamp != nil {
				continue
			}
			switch pod.Status.Phase {
			case v1.PodFailed:
				bkey := ds.Namespace + "/" + ds.Name + "/" + string(ds.UID) + "/" + node.Name
				now := c.backoff.Clock.Now()
				if c.backoff.IsInBackOffSinceUpdate(bkey, now) {
					c.enqueueAfter(ds, c.backoff.Get(bkey))
					continue
				}
				c.backoff.Next(bkey, now)
				c.recorder.Eventf(ds, v1.EventTypeWarning, reasonFailedDaemonPod,
					"Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node.Name)
				remove = append(remove, pod)
			case v1.PodSucceeded:
				c.recorder.Eventf(ds, v1.EventTypeWarning, reasonSucceededDaemonPod,
					"Found succeeded daemon pod %s/%s on node %s, will try to delete it", pod.Namespace, pod.Name, node.Name)
				remove = append(remove, pod)
			default:
				running = append(running, pod)
			}
		}
		if len(running) <= 1 {
			break
		}
		sort.Slice(running, func(i, j int) bool { return olderPod(running[i], running[j]) })
		if !allowsSurge(ds) {
			// One pod per node: keep the oldest.
			remove = append(remove, running[1:]...)
			break
		}
		// Surging: two pods only while the oldest new one is not yet
		// available and the oldest old one is ready.
		var newest, oldest *v1.Pod
		for _, pod := range running {
			if pod.Labels[labelRevisionHash] == hash {
				if newest == nil {
					newest = pod
					continue
				}
			} else if oldest == nil {
				oldest = pod
				continue
			}
			remove = append(remove, pod)
		}
		if newest != nil && oldest != nil {
			if !controllerutil.IsPodReady(oldest) || controllerutil.IsPodAvailable(newest, ds.Spec.MinReadySeconds, c.now()) {
				remove = append(remove, oldest)
			}
		}
	case exists:
		for _, pod := range pods {
			if pod.DeletionTimestamp == nil {
				remove = append(remove, pod)
			}
		}
	}
	return create, remove
}

// olderPod orders pods as upstream's podByCreationTimestampAndPhase:
// running before not running, then oldest first, then by name.
func olderPod(a, b *v1.Pod) bool {
	ar, br := a.Status.Phase == v1.PodRunning, b.Status.Phase == v1.PodRunning
	if ar != br {
		return ar
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// syncNodes deletes remove and creates a pod for each node of create, at
// most burst of each, with expectations set before the first write.
func (c *Controller) syncNodes(ctx context.Context, ds *appsv1.DaemonSet, remove []*v1.Pod, create []string, hash string) error {
	key := keyOf(ds.Namespace, ds.Name)
	if len(create) > c.burst {
		create = create[:c.burst]
	}
	if len(remove) > c.burst {
		remove = remove[:c.burst]
	}
	if len(create) == 0 && len(remove) == 0 {
		return nil
	}
	podKeys := make([]string, len(remove))
	for i, p := range remove {
		podKeys[i] = keyOf(p.Namespace, p.Name)
	}
	c.expectations.ExpectCreationsAndDeletions(key, len(create), podKeys)

	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// Slow start: batches of 1, 2, 4, ... so a create that is refused
	// (quota, admission) is refused once, not once per node.
	created := 0
	for batch := 1; created < len(create); batch *= 2 {
		nodes := create[created:min(created+batch, len(create))]
		var wg sync.WaitGroup
		failed := false
		for _, node := range nodes {
			wg.Go(func() {
				if err := c.pods.CreatePod(ctx, ds, newPod(ds, node, hash)); err != nil {
					c.expectations.CreationObserved(key)
					mu.Lock()
					failed = true
					mu.Unlock()
					fail(err)
				}
			})
		}
		wg.Wait()
		created += len(nodes)
		if failed {
			break
		}
	}
	for range len(create) - created {
		c.expectations.CreationObserved(key)
	}

	var wg sync.WaitGroup
	for i, pod := range remove {
		wg.Go(func() {
			if err := c.pods.DeletePod(ctx, ds, pod); err != nil {
				c.expectations.DeletionObserved(key, podKeys[i])
				if !apierrors.IsNotFound(err) {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// isPodUpdated reports whether pod runs ds's current template: its
// revision hash or its template generation says so.
func isPodUpdated(ds *appsv1.DaemonSet, pod *v1.Pod, hash string) bool {
	if hash != "" && pod.Labels[labelRevisionHash] == hash {
		return true
	}
	gen := resources.TemplateGeneration(ds)
	return gen > 0 && pod.Labels[labelTemplateGeneration] == strconv.FormatInt(gen, 10)
}
