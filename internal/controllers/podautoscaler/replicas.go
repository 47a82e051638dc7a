package podautoscaler

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// podMetric is one pod's usage of a resource, in milli-units (millicores,
// millibytes), as Kubernetes' metrics client reports it.
type podMetric struct {
	timestamp time.Time
	window    time.Duration
	value     int64
}

// podMetrics are usages by pod name.
type podMetrics map[string]podMetric

// tolerances are how far usage may be from the target, below and above,
// before the controller acts (10% each unless behavior says otherwise).
type tolerances struct {
	down, up float64
}

func (t tolerances) within(ratio float64) bool {
	return (1.0-ratio) <= t.down && (ratio-1.0) <= t.up
}

// calculator turns usage into replica counts, as Kubernetes'
// ReplicaCalculator: pods still starting or not ready are left out of a
// scale-up's evidence, pods without metrics are assumed to use what would
// make the change smallest.
type calculator struct {
	// cpuInitializationPeriod: a CPU sample of a pod younger than this
	// counts only once a whole window was taken after it became ready.
	cpuInitializationPeriod time.Duration
	// delayOfInitialReadiness: an unready pod that started within this
	// of its last readiness change is counted as never ready.
	delayOfInitialReadiness time.Duration
	now                     func() time.Time
}

var errNoPods = errors.New("no pods returned by selector while calculating replica count")

// utilizationReplicas is GetResourceReplicas: the count that brings the
// average utilization (usage over request, percent) to target.
func (c *calculator) utilizationReplicas(current int32, target int32, tol tolerances, resource corev1.ResourceName, container string, pods []*corev1.Pod, metrics podMetrics) (replicas int32, utilization int32, rawAverage int64, err error) {
	if len(pods) == 0 {
		return 0, 0, 0, errNoPods
	}
	ready, unready, missing, ignored := c.groupPods(pods, metrics, resource)
	removeMetrics(metrics, ignored)
	removeMetrics(metrics, unready)
	requests, err := podRequests(pods, container, resource)
	if err != nil {
		return 0, 0, 0, err
	}
	if len(metrics) == 0 {
		return 0, 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, utilization, rawAverage, err := utilizationRatio(metrics, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if tol.within(ratio) {
			return current, utilization, rawAverage, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), utilization, rawAverage, nil
	}
	if len(missing) > 0 {
		if ratio < 1.0 {
			// Scaling down: pods without metrics use their whole request
			// (or the target, if above 100%).
			fallback := int64(max(100, target))
			for name := range missing {
				metrics[name] = podMetric{value: requests[name] * fallback / 100}
			}
		} else if ratio > 1.0 {
			for name := range missing {
				metrics[name] = podMetric{value: 0}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			metrics[name] = podMetric{value: 0}
		}
	}
	newRatio, _, _, err := utilizationRatio(metrics, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		// The assumptions flipped the direction, or left it within
		// tolerance: do nothing.
		return current, utilization, rawAverage, nil
	}
	replicas = int32(math.Ceil(newRatio * float64(len(metrics))))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current, utilization, rawAverage, nil
	}
	return replicas, utilization, rawAverage, nil
}

// averageValueReplicas is GetRawResourceReplicas: the count that brings
// the average usage per pod (milli-units) to target.
func (c *calculator) averageValueReplicas(current int32, target int64, tol tolerances, resource corev1.ResourceName, pods []*corev1.Pod, metrics podMetrics) (replicas int32, average int64, err error) {
	if len(pods) == 0 {
		return 0, 0, errNoPods
	}
	ready, unready, missing, ignored := c.groupPods(pods, metrics, resource)
	removeMetrics(metrics, ignored)
	removeMetrics(metrics, unready)
	if len(metrics) == 0 {
		return 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, average := usageRatio(metrics, target)
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if tol.within(ratio) {
			return current, average, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), average, nil
	}
	if len(missing) > 0 {
		fill := int64(0)
		if ratio < 1.0 {
			fill = target
		}
		for name := range missing {
			metrics[name] = podMetric{value: fill}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			metrics[name] = podMetric{value: 0}
		}
	}
	newRatio, _ := usageRatio(metrics, target)
	if tol.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current, average, nil
	}
	replicas = int32(math.Ceil(newRatio * float64(len(metrics))))
	if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) {
		return current, average, nil
	}
	return replicas, average, nil
}

// groupPods sorts pods as Kubernetes does: deleted and failed ones are
// ignored; pending ones, and (for CPU) those not ready or whose sample
// may include their start-up, are unready; those without metrics are
// missing; the rest count.
func (c *calculator) groupPods(pods []*corev1.Pod, metrics podMetrics, resource corev1.ResourceName) (ready int, unready, missing, ignored sets.Set[string]) {
	unready, missing, ignored = sets.New[string](), sets.New[string](), sets.New[string]()
	now := c.now()
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
			ignored.Insert(pod.Name)
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			unready.Insert(pod.Name)
			continue
		}
		m, found := metrics[pod.Name]
		if !found {
			missing.Insert(pod.Name)
			continue
		}
		if resource == corev1.ResourceCPU {
			cond := readyCondition(pod)
			var notReady bool
			switch {
			case cond == nil || pod.Status.StartTime == nil:
				notReady = true
			case pod.Status.StartTime.Add(c.cpuInitializationPeriod).After(now):
				// Starting: a sample counts once a whole window was
				// taken after the pod became ready.
				notReady = cond.Status == corev1.ConditionFalse || m.timestamp.Before(cond.LastTransitionTime.Add(m.window))
			default:
				// Unready and never ready since it started.
				notReady = cond.Status == corev1.ConditionFalse && pod.Status.StartTime.Add(c.delayOfInitialReadiness).After(cond.LastTransitionTime.Time)
			}
			if notReady {
				unready.Insert(pod.Name)
				continue
			}
		}
		ready++
	}
	return ready, unready, missing, ignored
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func removeMetrics(metrics podMetrics, names sets.Set[string]) {
	for name := range names {
		delete(metrics, name)
	}
}

// podRequests sums each pod's containers' requests of resource (milli-
// units); container, if set, takes that container's only. A container
// without a request makes utilization meaningless: an error.
func podRequests(pods []*corev1.Pod, container string, resource corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		var sum int64
		cs := pod.Spec.Containers
		for _, ic := range pod.Spec.InitContainers {
			// Sidecars run beside the app and count.
			if ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				cs = append(cs[:len(cs):len(cs)], ic)
			}
		}
		for _, c := range cs {
			if container != "" && c.Name != container {
				continue
			}
			req, ok := c.Resources.Requests[resource]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", resource, c.Name, pod.Name)
			}
			sum += req.MilliValue()
		}
		out[pod.Name] = sum
	}
	return out, nil
}

// utilizationRatio is GetResourceUtilizationRatio: usage over requests of
// the pods with both, against target percent.
func utilizationRatio(metrics podMetrics, requests map[string]int64, target int32) (ratio float64, utilization int32, rawAverage int64, err error) {
	var usage, requested int64
	n := 0
	for name, m := range metrics {
		r, ok := requests[name]
		if !ok {
			continue // metrics of pods the selector no longer matches
		}
		usage += m.value
		requested += r
		n++
	}
	if requested == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization = int32(usage * 100 / requested)
	return float64(utilization) / float64(target), utilization, usage / int64(n), nil
}

// usageRatio is GetMetricUsageRatio: the average usage against target.
func usageRatio(metrics podMetrics, target int64) (float64, int64) {
	var total int64
	for _, m := range metrics {
		total += m.value
	}
	average := total / int64(len(metrics))
	return float64(average) / float64(target), average
}
