package wharf

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// ListWatcher is what an informer needs of a typed client (every client
// of this package is one).
type ListWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// NewInformer returns an informer of the objects c lists, T being their
// type (e.g. &wharfv1.Cluster{}), indexed by namespace and by indexers.
// tweak, if not nil, adjusts every list and watch (e.g. a label selector).
// The caller adds handlers, then runs it (go informer.RunWithContext(ctx)).
func NewInformer[L runtime.Object](c ListWatcher[L], example runtime.Object, resync time.Duration, indexers cache.Indexers, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&opts)
			}
			return c.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&opts)
			}
			return c.Watch(ctx, opts)
		},
	}
	all := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	for k, f := range indexers {
		all[k] = f
	}
	return cache.NewSharedIndexInformer(lw, example, resync, all)
}

// ClusterIndex indexes node groups by their cluster's key ("namespace/name",
// as cache.MetaNamespaceKeyFunc makes it for the cluster):
// informer.GetIndexer().ByIndex(ClusterIndex, key) lists a cluster's groups.
const ClusterIndex = "cluster"

func clusterIndex(obj any) ([]string, error) {
	g, ok := obj.(*wharfv1.NodeGroup)
	if !ok {
		return nil, nil
	}
	return []string{g.Namespace + "/" + g.Spec.Cluster}, nil
}

// ClusterInformer returns an informer of the clusters in namespace ("" all).
func (c *Client) ClusterInformer(namespace string, resync time.Duration) cache.SharedIndexInformer {
	return NewInformer(c.Clusters(namespace), &wharfv1.Cluster{}, resync, nil, nil)
}

// ClusterTemplateInformer returns an informer of the templates in namespace ("" all).
func (c *Client) ClusterTemplateInformer(namespace string, resync time.Duration) cache.SharedIndexInformer {
	return NewInformer(c.ClusterTemplates(namespace), &wharfv1.ClusterTemplate{}, resync, nil, nil)
}

// NodeGroupInformer returns an informer of the node groups in namespace
// ("" all), indexed by cluster (ClusterIndex).
func (c *Client) NodeGroupInformer(namespace string, resync time.Duration) cache.SharedIndexInformer {
	return NewInformer(c.NodeGroups(namespace), &wharfv1.NodeGroup{}, resync, cache.Indexers{ClusterIndex: clusterIndex}, nil)
}

// ClusterBackupInformer returns an informer of the cluster backups in namespace ("" all).
func (c *Client) ClusterBackupInformer(namespace string, resync time.Duration) cache.SharedIndexInformer {
	return NewInformer(c.ClusterBackups(namespace), &wharfv1.ClusterBackup{}, resync, nil, nil)
}

// Key is an object's informer key, "namespace/name".
func Key(obj metav1.Object) string {
	k, _ := cache.MetaNamespaceKeyFunc(obj)
	return k
}
