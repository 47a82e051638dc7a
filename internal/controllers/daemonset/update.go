package daemonset

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// allowsSurge reports whether ds's rolling update runs new pods beside old
// ones (maxSurge > 0) rather than deleting old ones first.
func allowsSurge(ds *appsv1.DaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return false
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true)
	return err == nil && n > 0
}

// rollingUpdate replaces pods of older revisions, as upstream's
// rollingUpdate: without surge it deletes up to maxUnavailable old pods
// (the manage loop then creates their replacements); with surge it creates
// new pods beside up to maxSurge old available ones and deletes an old pod
// once its replacement is available.
func (c *Controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector, nodes []*v1.Node, hash string) error {
	nodePods, err := c.nodesToDaemonPods(ctx, ds, selector)
	if err != nil {
		return err
	}
	maxSurge, maxUnavailable, desired := c.desiredNodeCounts(ds, nodes, nodePods)
	now := c.now()
	available := func(p *v1.Pod) bool { return controllerutil.IsPodAvailable(p, ds.Spec.MinReadySeconds, now) }

	if maxSurge == 0 {
		unavailable := 0
		var replace, candidates []*v1.Pod
		for _, node := range sortedKeys(nodePods) {
			newPod, oldPod, ok := updatedPodsOnNode(ds, nodePods[node], hash)
			switch {
			case !ok:
				// The manage loop cleans this node up; count it down.
				unavailable++
			case (oldPod == nil) == (newPod == nil):
				unavailable++
			case newPod != nil:
				if !available(newPod) {
					unavailable++
				}
			case !available(oldPod):
				// Down anyway: replacing it costs nothing.
				replace = append(replace, oldPod)
			case unavailable >= maxUnavailable:
			default:
				candidates = append(candidates, oldPod)
			}
		}
		n := min(max(maxUnavailable-unavailable, 0), len(candidates))
		return c.syncNodes(ctx, ds, append(replace, candidates[:n]...), nil, hash)
	}

	var remove, shouldNotRun []*v1.Pod
	var allowedNew, candidateNew []string
	surging, numAvailable := 0, 0
	for _, nodeName := range sortedKeys(nodePods) {
		newPod, oldPod, ok := updatedPodsOnNode(ds, nodePods[nodeName], hash)
		if !ok {
			surging++
			continue
		}
		if oldPod != nil && available(oldPod) || oldPod == nil && newPod != nil && available(newPod) {
			numAvailable++
		}
		switch {
		case oldPod == nil:
			// Nothing to replace; the manage loop handles this node.
		case newPod == nil:
			node, err := c.nodeLister.Get(nodeName)
			shouldRun := false
			if err == nil {
				shouldRun, _ = nodeShouldRunDaemonPod(node, ds)
			}
			switch {
			case !available(oldPod) && !shouldRun:
				remove = append(remove, oldPod)
			case !available(oldPod):
				allowedNew = append(allowedNew, nodeName)
			case !shouldRun:
				shouldNotRun = append(shouldNotRun, oldPod)
			case surging < maxSurge:
				candidateNew = append(candidateNew, nodeName)
			}
		default:
			if !available(newPod) {
				surging++
				continue
			}
			remove = append(remove, oldPod)
		}
	}
	// Pods on nodes that no longer fit go only once as many pods are
	// available elsewhere: surge promises full availability.
	if deletable := min(numAvailable-desired, len(shouldNotRun)); deletable > 0 {
		remove = append(remove, shouldNotRun[:deletable]...)
	}
	n := min(max(maxSurge-surging, 0), len(candidateNew))
	return c.syncNodes(ctx, ds, remove, append(allowedNew, candidateNew[:n]...), hash)
}

// desiredNodeCounts returns maxSurge and maxUnavailable scaled to the
// number of nodes that should run ds, and that number; nodes that should
// run ds but have no pod get an empty entry in nodePods.
func (c *Controller) desiredNodeCounts(ds *appsv1.DaemonSet, nodes []*v1.Node, nodePods map[string][]*v1.Pod) (maxSurge, maxUnavailable, desired int) {
	for _, node := range nodes {
		if run, _ := nodeShouldRunDaemonPod(node, ds); !run {
			continue
		}
		desired++
		if _, ok := nodePods[node.Name]; !ok {
			nodePods[node.Name] = nil
		}
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru != nil {
		if ru.MaxUnavailable != nil {
			maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
		}
		if ru.MaxSurge != nil {
			maxSurge, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true)
		}
	}
	if desired > 0 && maxUnavailable == 0 && maxSurge == 0 {
		// An impossible configuration: obey the default.
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable, desired
}

// updatedPodsOnNode returns the one current and the one old live pod of a
// node; ok is false when there are more of either (the manage loop first
// brings the node down to one).
func updatedPodsOnNode(ds *appsv1.DaemonSet, pods []*v1.Pod, hash string) (newPod, oldPod *v1.Pod, ok bool) {
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if isPodUpdated(ds, pod, hash) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = pod
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = pod
		}
	}
	return newPod, oldPod, true
}

func sortedKeys(m map[string][]*v1.Pod) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
