package daemonset

import (
	"context"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// calculateStatus counts ds's pods node by node as upstream's
// updateDaemonSetStatus. It also returns when the next ready pod becomes
// available (0: none pending).
func calculateStatus(ds *appsv1.DaemonSet, nodes []*v1.Node, nodePods map[string][]*v1.Pod, hash string, now time.Time) (appsv1.DaemonSetStatus, time.Duration) {
	s := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Status.ObservedGeneration,
		CollisionCount:     ds.Status.CollisionCount,
		Conditions:         ds.Status.Conditions,
	}
	var availableIn time.Duration
	for _, node := range nodes {
		shouldRun, _ := nodeShouldRunDaemonPod(node, ds)
		pods := nodePods[node.Name]
		scheduled := len(pods) > 0
		if !shouldRun {
			if scheduled {
				s.NumberMisscheduled++
			}
			continue
		}
		s.DesiredNumberScheduled++
		if !scheduled {
			continue
		}
		s.CurrentNumberScheduled++
		sorted := append([]*v1.Pod(nil), pods...)
		sort.Slice(sorted, func(i, j int) bool { return olderPod(sorted[i], sorted[j]) })
		pod := sorted[0]
		if left, ok := controllerutil.PodAvailableIn(pod, ds.Spec.MinReadySeconds, now); ok {
			s.NumberReady++
			if left <= 0 {
				s.NumberAvailable++
			} else if availableIn == 0 || left < availableIn {
				availableIn = left
			}
		}
		if isPodUpdated(ds, pod, hash) {
			s.UpdatedNumberScheduled++
		}
	}
	s.NumberUnavailable = max(s.DesiredNumberScheduled-s.NumberAvailable, 0)
	return s, availableIn
}

// updateStatus writes ds's status when it changed, observedGeneration too
// when this sync acted on ds's generation. A conflict is retried once on a
// fresh read.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*v1.Node, nodePods map[string][]*v1.Pod, hash string, observed bool) error {
	status, availableIn := calculateStatus(ds, nodes, nodePods, hash, c.now())
	if observed {
		status.ObservedGeneration = ds.Generation
	}
	if availableIn > 0 {
		c.enqueueAfter(ds, availableIn)
	}
	cur := ds
	for attempt := 0; ; attempt++ {
		if apiequality.Semantic.DeepEqual(cur.Status, withCurrent(status, cur)) {
			return nil
		}
		update := cur.DeepCopy()
		update.Status = withCurrent(status, cur)
		_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 1 {
			return fmt.Errorf("update status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
		if cur, err = c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("get daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
	}
}

// withCurrent keeps what the stored object knows better than this sync:
// a collisionCount bumped meanwhile.
func withCurrent(s appsv1.DaemonSetStatus, cur *appsv1.DaemonSet) appsv1.DaemonSetStatus {
	s.CollisionCount = cur.Status.CollisionCount
	s.Conditions = cur.Status.Conditions
	return s
}
