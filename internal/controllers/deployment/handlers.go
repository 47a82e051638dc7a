package deployment

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

func (c *Controller) addDeployment(obj any) {
	c.enqueue(obj.(*appsv1.Deployment))
}

func (c *Controller) updateDeployment(_, cur any) {
	c.enqueue(cur.(*appsv1.Deployment))
}

func (c *Controller) deleteDeployment(obj any) {
	d, ok := controllerutil.DeletedObject[*appsv1.Deployment](obj)
	if !ok {
		return
	}
	c.enqueue(d)
}

func (c *Controller) addReplicaSet(obj any) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.DeletionTimestamp != nil {
		c.deleteReplicaSet(rs)
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	// An orphan: every Deployment that could adopt it should look.
	for _, d := range c.matchingDeployments(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(old, cur any) {
	oldRS, curRS := old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet)
	if oldRS.ResourceVersion == curRS.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curRS), metav1.GetControllerOf(oldRS)
	refChanged := (curRef == nil) != (oldRef == nil) || (curRef != nil && curRef.UID != oldRef.UID)
	if refChanged && oldRef != nil {
		if d := c.resolveControllerRef(oldRS.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.resolveControllerRef(curRS.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if refChanged || !labels.Equals(curRS.Labels, oldRS.Labels) {
		for _, d := range c.matchingDeployments(curRS) {
			c.enqueue(d)
		}
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := controllerutil.DeletedObject[*appsv1.ReplicaSet](obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate Deployment when one of its pods is gone: it
// waits for all old pods to disappear before creating new ones, and no
// ReplicaSet event says when that happens.
func (c *Controller) deletePod(obj any) {
	pod, ok := controllerutil.DeletedObject[*v1.Pod](obj)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	rs, ok := controllerutil.ResolveControllerRef(ref, "ReplicaSet", c.rsLister.ReplicaSets(pod.Namespace).Get)
	if !ok {
		return
	}
	rsRef := metav1.GetControllerOf(rs)
	if rsRef == nil {
		return
	}
	if d := c.resolveControllerRef(rs.Namespace, rsRef); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}

func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	d, _ := controllerutil.ResolveControllerRef(ref, controllerKind.Kind, c.dLister.Deployments(namespace).Get)
	return d
}

// matchingDeployments returns the Deployments whose selector matches rs.
func (c *Controller) matchingDeployments(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	all, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	out := controllerutil.Selecting(all, func(d *appsv1.Deployment) *metav1.LabelSelector { return d.Spec.Selector }, rs.Labels)
	if len(out) > 1 {
		c.logger.Warn("more than one Deployment selects replicaset", "replicaset", keyOf(rs.Namespace, rs.Name), "count", len(out))
	}
	return out
}
