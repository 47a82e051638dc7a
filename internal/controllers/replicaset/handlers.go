package replicaset

import (
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) addRS(obj any) {
	c.enqueue(obj.(*appsv1.ReplicaSet))
}

func (c *Controller) updateRS(old, cur any) {
	oldRS, curRS := old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet)
	if oldRS.UID != curRS.UID {
		// Deleted and recreated between two events: the old one's
		// expectations must not leak into the new one.
		c.deleteRS(cache.DeletedFinalStateUnknown{Key: keyOf(oldRS.Namespace, oldRS.Name), Obj: oldRS})
	}
	// Every update requeues, not only spec changes: a periodic resync then
	// retries ReplicaSets whose last creations failed.
	c.enqueue(curRS)
}

func (c *Controller) deleteRS(obj any) {
	rs, ok := controllerutil.DeletedObject[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	key := keyOf(rs.Namespace, rs.Name)
	c.expectations.Delete(key)
	c.queue.Add(key)
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*v1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (after a restart):
		// that is a deletion, not a creation, as far as expectations go.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		rs := c.resolveControllerRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key := keyOf(rs.Namespace, rs.Name)
		c.expectations.CreationObserved(key)
		c.queue.Add(key)
		return
	}
	// An orphan: wake every ReplicaSet that could adopt it. No creation is
	// observed, nobody was waiting for an orphan.
	for _, rs := range c.matchingReplicaSets(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*v1.Pod), cur.(*v1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return // a periodic resync, nothing changed
	}
	labelsChanged := !reflect.DeepEqual(oldPod.Labels, curPod.Labels)
	if curPod.DeletionTimestamp != nil {
		// Graceful deletion: replace the pod now, not once the kubelet
		// has removed it.
		c.deletePod(curPod)
		if labelsChanged {
			c.deletePod(oldPod)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.resolveControllerRef(oldPod.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if curRef != nil {
		rs := c.resolveControllerRef(curPod.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		// Nothing else will wake the ReplicaSet when the pod has been
		// ready long enough to count as available.
		if !controllerutil.IsPodReady(oldPod) && controllerutil.IsPodReady(curPod) && rs.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(rs, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.matchingReplicaSets(curPod) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := controllerutil.DeletedObject[*v1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	rs := c.resolveControllerRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := keyOf(rs.Namespace, rs.Name)
	c.expectations.DeletionObserved(key, keyOf(pod.Namespace, pod.Name))
	c.queue.Add(key)
}

// resolveControllerRef returns the ReplicaSet ref points to, if it is still
// the same object (a ReplicaSet recreated under the same name is not).
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	rs, _ := controllerutil.ResolveControllerRef(ref, controllerKind.Kind, c.rsLister.ReplicaSets(namespace).Get)
	return rs
}

// matchingReplicaSets returns the ReplicaSets whose selector matches pod.
func (c *Controller) matchingReplicaSets(pod *v1.Pod) []*appsv1.ReplicaSet {
	all, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	out := controllerutil.Selecting(all, func(rs *appsv1.ReplicaSet) *metav1.LabelSelector { return rs.Spec.Selector }, pod.Labels)
	if len(out) > 1 {
		c.logger.Warn("more than one ReplicaSet selects pod", "pod", keyOf(pod.Namespace, pod.Name), "count", len(out))
	}
	return out
}
