package disruption

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	pdb, err := c.pdbLister.PodDisruptionBudgets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = c.trySync(ctx, pdb)
	if err == nil || apierrors.IsConflict(err) {
		return err // a conflict: the cache was behind, the requeue retries
	}
	c.logger.Warn("sync failed, allowing no disruption", "poddisruptionbudget", key, "err", err)
	if ferr := c.failSafe(ctx, pdb, err); ferr != nil {
		return fmt.Errorf("%w (and setting SyncFailed: %w)", err, ferr)
	}
	return err
}

func (c *Controller) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	pods, err := c.podsOf(pdb)
	if err != nil {
		c.recorder.Eventf(pdb, v1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	if len(pods) == 0 {
		c.recorder.Eventf(pdb, v1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	expected, desired, unmanaged, err := c.expectedPodCount(ctx, pdb, pods)
	if err != nil {
		c.recorder.Eventf(pdb, v1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return err
	}
	if len(unmanaged) > 0 {
		c.recorder.Eventf(pdb, v1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	now := c.now()
	disrupted, recheck := c.disruptedPods(pods, pdb, now)
	healthy := countHealthy(pods, disrupted, now)
	status := computeStatus(pdb, healthy, desired, expected, disrupted)
	if err := c.writeStatus(ctx, pdb, status); err != nil {
		return err
	}
	if recheck != nil {
		c.queue.AddAfter(pdb.Namespace+"/"+pdb.Name, recheck.Sub(now))
	}
	return nil
}

// podsOf lists the pods pdb selects: in policy/v1 a nil selector selects
// none and an empty one every pod of the namespace.
func (c *Controller) podsOf(pdb *policyv1.PodDisruptionBudget) ([]*v1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, err
	}
	return c.podLister.Pods(pdb.Namespace).List(sel)
}

// expectedPodCount returns how many pods pdb expects and how many of them
// must stay healthy: an integer minAvailable counts the pods there are, a
// percentage or a maxUnavailable counts the replicas their controllers
// want. unmanaged names the pods with no controller, which such a count
// cannot include.
func (c *Controller) expectedPodCount(ctx context.Context, pdb *policyv1.PodDisruptionBudget, pods []*v1.Pod) (expected, desired int32, unmanaged []string, err error) {
	switch s := pdb.Spec; {
	case s.MaxUnavailable != nil:
		expected, unmanaged, err = c.expectedScale(ctx, pods)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(s.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		return expected, max(expected-int32(maxUnavailable), 0), unmanaged, nil
	case s.MinAvailable != nil && s.MinAvailable.Type == intstr.Int:
		return int32(len(pods)), s.MinAvailable.IntVal, nil, nil
	case s.MinAvailable != nil:
		expected, unmanaged, err = c.expectedScale(ctx, pods)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(s.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		return expected, int32(minAvailable), unmanaged, nil
	}
	return 0, 0, nil, nil
}

// expectedScale sums the scale of the pods' controllers, each once.
func (c *Controller) expectedScale(ctx context.Context, pods []*v1.Pod) (int32, []string, error) {
	scales := map[string]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := scales[string(ref.UID)]; ok {
			continue
		}
		found, err := c.controllerScale(ctx, pod.Namespace, ref)
		if err != nil {
			return 0, unmanaged, err
		}
		if found == nil {
			return 0, unmanaged, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		scales[string(found.uid)] = found.scale
	}
	var total int32
	for _, n := range scales {
		total += n
	}
	return total, unmanaged, nil
}

// countHealthy counts the Ready pods that are neither terminating nor
// recently evicted.
func countHealthy(pods []*v1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[pod.Name]; ok && at.Add(DeletionTimeout).After(now) {
			continue
		}
		if controllerutil.IsPodReady(pod) {
			n++
		}
	}
	return n
}

// disruptedPods keeps the entries of status.disruptedPods whose pod is
// still there, not yet terminating, and evicted less than DeletionTimeout
// ago; recheck is when the oldest kept entry expires.
func (c *Controller) disruptedPods(pods []*v1.Pod, pdb *policyv1.PodDisruptionBudget, now time.Time) (map[string]metav1.Time, *time.Time) {
	out := map[string]metav1.Time{}
	var recheck *time.Time
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		expire := at.Add(DeletionTimeout)
		if expire.Before(now) {
			c.recorder.Eventf(pod, v1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
			continue
		}
		if recheck == nil || expire.Before(*recheck) {
			recheck = &expire
		}
		out[pod.Name] = at
	}
	return out, recheck
}

// computeStatus is pdb's status from the counts. No disruption is allowed
// while no pod is expected: a budget whose first pods just appeared is
// safe until it is synced again.
func computeStatus(pdb *policyv1.PodDisruptionBudget, healthy, desired, expected int32, disrupted map[string]metav1.Time) policyv1.PodDisruptionBudgetStatus {
	allowed := healthy - desired
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	out := pdb.DeepCopy()
	out.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy:     healthy,
		DesiredHealthy:     desired,
		ExpectedPods:       expected,
		DisruptionsAllowed: allowed,
		DisruptedPods:      disrupted,
		ObservedGeneration: pdb.Generation,
		Conditions:         out.Status.Conditions,
	}
	pdbhelper.UpdateDisruptionAllowedCondition(out)
	return out.Status
}

// writeStatus writes status unless pdb already has it.
func (c *Controller) writeStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, status policyv1.PodDisruptionBudgetStatus) error {
	if statusUpToDate(pdb, status) {
		return nil
	}
	out := pdb.DeepCopy()
	out.Status = status
	_, err := c.client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}

func statusUpToDate(pdb *policyv1.PodDisruptionBudget, want policyv1.PodDisruptionBudgetStatus) bool {
	s := pdb.Status
	return s.CurrentHealthy == want.CurrentHealthy && s.DesiredHealthy == want.DesiredHealthy &&
		s.ExpectedPods == want.ExpectedPods && s.DisruptionsAllowed == want.DisruptionsAllowed &&
		apiequality.Semantic.DeepEqual(s.DisruptedPods, want.DisruptedPods) &&
		s.ObservedGeneration == pdb.Generation && pdbhelper.ConditionsAreUpToDate(pdb)
}

// failSafe allows no disruption when the status cannot be computed, so
// that the eviction subresource refuses instead of guessing.
func (c *Controller) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error) error {
	out := pdb.DeepCopy()
	out.Status.DisruptionsAllowed = 0
	if out.Status.Conditions == nil {
		out.Status.Conditions = []metav1.Condition{}
	}
	apimeta.SetStatusCondition(&out.Status.Conditions, metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.SyncFailedReason,
		Message:            cause.Error(),
		ObservedGeneration: out.Status.ObservedGeneration,
	})
	_, err := c.client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	return err
}
