package daemonset

import (
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) addDaemonSet(obj any) {
	c.enqueue(obj.(*appsv1.DaemonSet))
}

func (c *Controller) updateDaemonSet(old, cur any) {
	oldDS, curDS := old.(*appsv1.DaemonSet), cur.(*appsv1.DaemonSet)
	if oldDS.UID != curDS.UID {
		c.deleteDaemonSet(cache.DeletedFinalStateUnknown{Key: keyOf(oldDS.Namespace, oldDS.Name), Obj: oldDS})
	}
	c.enqueue(curDS)
}

func (c *Controller) deleteDaemonSet(obj any) {
	ds, ok := controllerutil.DeletedObject[*appsv1.DaemonSet](obj)
	if !ok {
		return
	}
	key := keyOf(ds.Namespace, ds.Name)
	c.expectations.Delete(key)
	c.queue.Add(key)
}

// addHistory wakes the DaemonSet a ControllerRevision belongs to, on any
// change: its history is part of its state (kubectl rollout undo, a
// revision deleted by hand).
func (c *Controller) addHistory(obj any) {
	h, ok := controllerutil.DeletedObject[*appsv1.ControllerRevision](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(h); ref != nil {
		if ds := c.resolveControllerRef(h.Namespace, ref); ds != nil {
			c.enqueue(ds)
		}
		return
	}
	for _, ds := range c.matchingDaemonSets(h.Namespace, h.Labels) {
		c.enqueue(ds)
	}
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*v1.Pod)
	if pod.DeletionTimestamp != nil {
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		ds := c.resolveControllerRef(pod.Namespace, ref)
		if ds == nil {
			return
		}
		key := keyOf(ds.Namespace, ds.Name)
		c.expectations.CreationObserved(key)
		c.queue.Add(key)
		return
	}
	for _, ds := range c.matchingDaemonSets(pod.Namespace, pod.Labels) {
		c.enqueue(ds)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*v1.Pod), cur.(*v1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return
	}
	if curPod.DeletionTimestamp != nil {
		c.deletePod(curPod)
		if !reflect.DeepEqual(oldPod.Labels, curPod.Labels) {
			c.deletePod(oldPod)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if ds := c.resolveControllerRef(oldPod.Namespace, oldRef); ds != nil {
			c.enqueue(ds)
		}
	}
	if curRef != nil {
		ds := c.resolveControllerRef(curPod.Namespace, curRef)
		if ds == nil {
			return
		}
		c.enqueue(ds)
		// Nothing else wakes the DaemonSet when the pod has been ready
		// for minReadySeconds and counts as available.
		if !controllerutil.IsPodReady(oldPod) && controllerutil.IsPodReady(curPod) && ds.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(ds, time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(oldPod.Labels, curPod.Labels) {
		for _, ds := range c.matchingDaemonSets(curPod.Namespace, curPod.Labels) {
			c.enqueue(ds)
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
	ds := c.resolveControllerRef(pod.Namespace, ref)
	if ds == nil {
		return
	}
	key := keyOf(ds.Namespace, ds.Name)
	c.expectations.DeletionObserved(key, keyOf(pod.Namespace, pod.Name))
	c.queue.Add(key)
}

// addNode wakes the DaemonSets that want a pod on a new node, at once:
// this is the path that gives a new node its daemons.
func (c *Controller) addNode(obj any) {
	node := obj.(*v1.Node)
	for _, ds := range c.allDaemonSets() {
		if run, _ := nodeShouldRunDaemonPod(node, ds); run {
			c.enqueue(ds)
		}
	}
}

// updateNode wakes the DaemonSets whose verdict on the node changed. Only
// labels, taints and the name decide it; heartbeats change none of them.
func (c *Controller) updateNode(old, cur any) {
	oldNode, curNode := old.(*v1.Node), cur.(*v1.Node)
	if apiequality.Semantic.DeepEqual(oldNode.Labels, curNode.Labels) &&
		apiequality.Semantic.DeepEqual(oldNode.Spec.Taints, curNode.Spec.Taints) {
		return
	}
	for _, ds := range c.allDaemonSets() {
		oldRun, oldContinue := nodeShouldRunDaemonPod(oldNode, ds)
		curRun, curContinue := nodeShouldRunDaemonPod(curNode, ds)
		if oldRun != curRun || oldContinue != curContinue {
			c.enqueue(ds)
		}
	}
}

// deleteNode wakes every DaemonSet: its desired count dropped, and its
// unbound pods for that node must go.
func (c *Controller) deleteNode(obj any) {
	if _, ok := controllerutil.DeletedObject[*v1.Node](obj); !ok {
		return
	}
	for _, ds := range c.allDaemonSets() {
		c.enqueue(ds)
	}
}

func (c *Controller) allDaemonSets() []*appsv1.DaemonSet {
	all, err := c.dsLister.List(labels.Everything())
	if err != nil {
		return nil
	}
	return all
}

// resolveControllerRef returns the DaemonSet ref points to, if it is still
// the same object.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	ds, _ := controllerutil.ResolveControllerRef(ref, controllerKind.Kind, c.dsLister.DaemonSets(namespace).Get)
	return ds
}

// matchingDaemonSets returns the DaemonSets of namespace whose selector
// matches lbls.
func (c *Controller) matchingDaemonSets(namespace string, lbls map[string]string) []*appsv1.DaemonSet {
	all, err := c.dsLister.DaemonSets(namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	return controllerutil.Selecting(all, func(ds *appsv1.DaemonSet) *metav1.LabelSelector { return ds.Spec.Selector }, lbls)
}
