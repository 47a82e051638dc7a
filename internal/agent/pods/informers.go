package pods

import (
	"context"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

const uidIndex = "uid"

// startInformers watches this node's pods and its Node object.
func (m *Manager) startInformers(ctx context.Context) {
	podFactory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	m.podInformer = podFactory.Core().V1().Pods().Informer()
	_ = m.podInformer.AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		return []string{string(obj.(*v1.Pod).UID)}, nil
	}})
	_, _ = m.podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { m.podSeen(obj.(*v1.Pod), true) },
		UpdateFunc: func(oldObj, newObj any) {
			old, cur := oldObj.(*v1.Pod), newObj.(*v1.Pod)
			m.podSeen(cur, specOrMetaChanged(old, cur))
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				m.wake(pod.UID)
			}
		},
	})

	nodeFactory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", m.cfg.NodeName).String()
		}))
	m.nodeInformer = nodeFactory.Core().V1().Nodes().Informer()
	podFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
}

// podSeen starts or wakes the worker of a pod bound to this node.
func (m *Manager) podSeen(pod *v1.Pod, changed bool) {
	// The field selector already filters; fakes and old servers may not.
	if pod.Spec.NodeName != m.cfg.NodeName {
		return
	}
	m.objects.register(pod)
	if m.ensureWorker(pod.UID) || changed {
		m.wake(pod.UID)
	}
}

// specOrMetaChanged ignores what the agent's own status writes change, so
// they do not trigger a sync each.
func specOrMetaChanged(old, cur *v1.Pod) bool {
	if !apiequality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		return true
	}
	a, b := old.ObjectMeta.DeepCopy(), cur.ObjectMeta.DeepCopy()
	a.ResourceVersion, b.ResourceVersion = "", ""
	a.ManagedFields, b.ManagedFields = nil, nil
	return !apiequality.Semantic.DeepEqual(a, b)
}

// pod returns the API's pod with uid, nil when it is gone.
func (m *Manager) pod(uid types.UID) *v1.Pod {
	objs, err := m.podInformer.GetIndexer().ByIndex(uidIndex, string(uid))
	if err != nil {
		return nil
	}
	for _, o := range objs {
		if p := o.(*v1.Pod); p.Spec.NodeName == m.cfg.NodeName {
			return p
		}
	}
	return nil
}

// knownPods are the UIDs of the node's pods in the API.
func (m *Manager) knownPods() map[types.UID]bool {
	known := map[types.UID]bool{}
	for _, o := range m.podInformer.GetStore().List() {
		if p := o.(*v1.Pod); p.Spec.NodeName == m.cfg.NodeName {
			known[p.UID] = true
		}
	}
	return known
}
