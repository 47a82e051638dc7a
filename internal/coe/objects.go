package coe

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/gentype"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
)

var clustersGVR = wharfv1.SchemeGroupVersion.WithResource("clusters")

// object is a wharf.dev object.
type object interface {
	runtime.Object
	metav1.Object
}

// resource reads and writes one wharf.dev resource's objects, addressed
// by namespace and name (the typed client is per namespace).
type resource[T object, L runtime.Object] struct {
	in func(namespace string) *gentype.ClientWithList[T, L]
}

// objects are the wharf.dev resources the controller uses.
type objects struct {
	clusters  resource[*wharfv1.Cluster, *wharfv1.ClusterList]
	groups    resource[*wharfv1.NodeGroup, *wharfv1.NodeGroupList]
	templates resource[*wharfv1.ClusterTemplate, *wharfv1.ClusterTemplateList]
}

func newObjects(c *wharf.Client) objects {
	return objects{
		clusters:  resource[*wharfv1.Cluster, *wharfv1.ClusterList]{c.Clusters},
		groups:    resource[*wharfv1.NodeGroup, *wharfv1.NodeGroupList]{c.NodeGroups},
		templates: resource[*wharfv1.ClusterTemplate, *wharfv1.ClusterTemplateList]{c.ClusterTemplates},
	}
}

func (r resource[T, L]) get(ctx context.Context, ns, name string) (T, error) {
	return r.in(ns).Get(ctx, name, metav1.GetOptions{})
}

func (r resource[T, L]) list(ctx context.Context, ns string) (L, error) {
	return r.in(ns).List(ctx, metav1.ListOptions{})
}

func (r resource[T, L]) create(ctx context.Context, obj T) (T, error) {
	return r.in(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{})
}

// update writes obj's metadata and spec; the server keeps the stored
// status. obj's resourceVersion makes it fail on a conflict.
func (r resource[T, L]) update(ctx context.Context, obj T) (T, error) {
	return r.in(obj.GetNamespace()).Update(ctx, obj, metav1.UpdateOptions{})
}

// updateStatus writes obj's status only.
func (r resource[T, L]) updateStatus(ctx context.Context, obj T) (T, error) {
	return r.in(obj.GetNamespace()).UpdateStatus(ctx, obj, metav1.UpdateOptions{})
}

// delete removes the object if it is still the one with uid.
func (r resource[T, L]) delete(ctx context.Context, ns, name string, uid types.UID) error {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = metav1.NewUIDPreconditions(string(uid))
	}
	return r.in(ns).Delete(ctx, name, opts)
}
