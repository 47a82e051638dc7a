package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/informers"
	kcache "k8s.io/client-go/tools/cache"
)

// register hooks the scheduler to the node and pod informers.
func (s *Scheduler) register(factory informers.SharedInformerFactory) {
	nodes, err := factory.Core().V1().Nodes().Informer().AddEventHandler(kcache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onNode(obj) },
		UpdateFunc: func(_, obj any) { s.onNode(obj) },
		DeleteFunc: s.onNodeDelete,
	})
	if err != nil {
		// Only a stopped informer refuses a handler; Run would then wait forever.
		s.logger.Error("cannot watch nodes", "err", err)
	} else {
		s.synced = append(s.synced, nodes.HasSynced)
	}
	s.registerVolumes(factory)
	pods, err := factory.Core().V1().Pods().Informer().AddEventHandler(kcache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onPod(nil, obj) },
		UpdateFunc: s.onPod,
		DeleteFunc: s.onPodDelete,
	})
	if err != nil {
		s.logger.Error("cannot watch pods", "err", err)
	} else {
		s.synced = append(s.synced, pods.HasSynced)
	}
}

func (s *Scheduler) onNode(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	// A node that is not Ready takes no pod (the first filter, for every
	// pod): waking the unschedulable pods for it would only double their
	// back-off, as Kubernetes' queueing hints skip such node events. Its
	// becoming Ready is the change to wait for.
	if s.cache.setNode(node) && nodeReady(node) {
		s.queue.moveAll()
	}
}

func (s *Scheduler) onNodeDelete(obj any) {
	if t, ok := obj.(kcache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.removeNode(node.Name)
	}
}

// onPod routes a pod to the cache when bound and to the queue when pending.
func (s *Scheduler) onPod(oldObj, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key := podKey(pod)
	if pod.Spec.NodeName != "" {
		s.queue.delete(key)
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			// A finished pod holds no room any more.
			if s.cache.removePod(key) {
				s.queue.moveAll()
			}
			return
		}
		s.cache.setBoundPod(pod)
		return
	}
	if !responsibleFor(pod) {
		s.queue.delete(key)
		return
	}
	if !s.queue.has(key) && s.cache.has(key) {
		return // a pending copy of a pod we have just bound
	}
	old, _ := oldObj.(*corev1.Pod)
	s.queue.add(key, pod, old == nil || schedulingInputsChanged(old, pod))
}

func (s *Scheduler) onPodDelete(obj any) {
	if t, ok := obj.(kcache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key := podKey(pod)
	s.queue.delete(key)
	if s.cache.removePod(key) {
		s.queue.moveAll()
	}
}

// schedulingInputsChanged ignores status and metadata other than labels, so
// the scheduler's own condition updates do not retrigger the pod.
func schedulingInputsChanged(old, pod *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, pod.Spec) ||
		!equality.Semantic.DeepEqual(old.Labels, pod.Labels)
}
