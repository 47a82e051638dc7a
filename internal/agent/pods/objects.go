package pods

import (
	"context"
	"log/slog"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

type objectKind string

const (
	kindConfigMap objectKind = "configmap"
	kindSecret    objectKind = "secret"
	// kindClaim: a claim's binding wakes the pods waiting for it.
	kindClaim objectKind = "persistentvolumeclaim"
)

type objectKey struct {
	kind            objectKind
	namespace, name string
}

type objectEntry struct {
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	users    map[types.UID]bool
}

// objectCache watches each ConfigMap and Secret the node's pods use, one
// watch per object (as the kubelet's watch-based managers do), so that
// volumes follow changes and no agent lists a namespace's secrets.
type objectCache struct {
	client kubernetes.Interface
	log    *slog.Logger
	wake   func(types.UID)

	mu      sync.Mutex
	entries map[objectKey]*objectEntry
	byPod   map[types.UID][]objectKey
}

func newObjectCache(client kubernetes.Interface, log *slog.Logger, wake func(types.UID)) *objectCache {
	return &objectCache{client: client, log: log, wake: wake, entries: map[objectKey]*objectEntry{}, byPod: map[types.UID][]objectKey{}}
}

// register makes the cache watch what pod refers to, and stop watching
// what it no longer does.
func (c *objectCache) register(pod *v1.Pod) {
	keys := podReferences(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		e, ok := c.entries[k]
		if !ok {
			e = c.watch(k)
			c.entries[k] = e
		}
		e.users[pod.UID] = true
	}
	for _, k := range c.byPod[pod.UID] {
		if !containsKey(keys, k) {
			c.release(k, pod.UID)
		}
	}
	c.byPod[pod.UID] = keys
}

// unregister stops the watches only pod needed.
func (c *objectCache) unregister(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.byPod[uid] {
		c.release(k, uid)
	}
	delete(c.byPod, uid)
}

func (c *objectCache) release(k objectKey, uid types.UID) {
	e, ok := c.entries[k]
	if !ok {
		return
	}
	delete(e.users, uid)
	if len(e.users) == 0 {
		e.cancel()
		delete(c.entries, k)
	}
}

func (c *objectCache) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		e.cancel()
		delete(c.entries, k)
	}
}

// listWatchByName lists and watches, through list and watchFn, only the
// object called name.
func listWatchByName[L runtime.Object](name string,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error),
) *cache.ListWatch {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return watchFn(ctx, o)
		},
	}
}

// watch starts an informer on one object; its events wake the pods using
// it.
func (c *objectCache) watch(k objectKey) *objectEntry {
	var example runtime.Object
	var lw *cache.ListWatch
	switch k.kind {
	case kindConfigMap:
		example = &v1.ConfigMap{}
		api := c.client.CoreV1().ConfigMaps(k.namespace)
		lw = listWatchByName(k.name, api.List, api.Watch)
	case kindSecret:
		example = &v1.Secret{}
		api := c.client.CoreV1().Secrets(k.namespace)
		lw = listWatchByName(k.name, api.List, api.Watch)
	case kindClaim:
		example = &v1.PersistentVolumeClaim{}
		api := c.client.CoreV1().PersistentVolumeClaims(k.namespace)
		lw = listWatchByName(k.name, api.List, api.Watch)
	}
	// Streaming lists only where the client supports them (not the fake).
	e := &objectEntry{
		informer: cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, c.client), example, 0, cache.Indexers{}),
		users:    map[types.UID]bool{},
	}
	notify := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if m, ok := obj.(metav1.Object); !ok || m.GetName() != k.name {
			return
		}
		c.mu.Lock()
		users := make([]types.UID, 0, len(e.users))
		for uid := range e.users {
			users = append(users, uid)
		}
		c.mu.Unlock()
		for _, uid := range users {
			c.wake(uid)
		}
	}
	_, _ = e.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.informer.RunWithContext(ctx)
	return e
}

// get reads an object from its watch once synced, else from the API.
func (c *objectCache) get(ctx context.Context, k objectKey) (any, error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && e.informer.HasSynced() {
		obj, found, err := e.informer.GetStore().GetByKey(k.namespace + "/" + k.name)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, apierrors.NewNotFound(v1.Resource(string(k.kind)+"s"), k.name)
		}
		return obj, nil
	}
	switch k.kind {
	case kindConfigMap:
		return c.client.CoreV1().ConfigMaps(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	case kindClaim:
		return c.client.CoreV1().PersistentVolumeClaims(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	}
	return c.client.CoreV1().Secrets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
}

// PersistentVolumeClaim implements volume.ClaimSources.
func (c *objectCache) PersistentVolumeClaim(ctx context.Context, namespace, name string) (*v1.PersistentVolumeClaim, error) {
	obj, err := c.get(ctx, objectKey{kindClaim, namespace, name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.PersistentVolumeClaim), nil
}

// ConfigMap implements volume.Sources and objectSource.
func (c *objectCache) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	obj, err := c.get(ctx, objectKey{kindConfigMap, namespace, name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.ConfigMap), nil
}

// Secret implements volume.Sources and objectSource.
func (c *objectCache) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	obj, err := c.get(ctx, objectKey{kindSecret, namespace, name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Secret), nil
}

// podReferences lists the ConfigMaps and Secrets pod's volumes and
// environment refer to.
func podReferences(pod *v1.Pod) []objectKey {
	var keys []objectKey
	add := func(kind objectKind, name string) {
		k := objectKey{kind, pod.Namespace, name}
		if name != "" && !containsKey(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			add(kindConfigMap, v.ConfigMap.Name)
		case v.Secret != nil:
			add(kindSecret, v.Secret.SecretName)
		case v.PersistentVolumeClaim != nil:
			add(kindClaim, v.PersistentVolumeClaim.ClaimName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					add(kindConfigMap, s.ConfigMap.Name)
				}
				if s.Secret != nil {
					add(kindSecret, s.Secret.Name)
				}
			}
		}
	}
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, ctr := range list {
			for _, f := range ctr.EnvFrom {
				if f.ConfigMapRef != nil {
					add(kindConfigMap, f.ConfigMapRef.Name)
				}
				if f.SecretRef != nil {
					add(kindSecret, f.SecretRef.Name)
				}
			}
			for _, e := range ctr.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					add(kindConfigMap, r.Name)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					add(kindSecret, r.Name)
				}
			}
		}
	}
	return keys
}

func containsKey(keys []objectKey, k objectKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}
