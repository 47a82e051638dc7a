// Package statefulset is Wharf's StatefulSet controller, modelled on
// Kubernetes' pkg/controller/statefulset: each StatefulSet gets pods with
// stable names (<set>-<ordinal>), a stable DNS name through its headless
// service (hostname and subdomain), and its own claims from
// volumeClaimTemplates (<template>-<set>-<ordinal>), created before the pod
// and owned according to the claim retention policy.
//
// Pods are created in ordinal order, each waiting for the previous one to
// be Running and Ready, and removed in reverse (OrderedReady), or all at
// once (Parallel). Templates are recorded as ControllerRevisions; a
// RollingUpdate replaces pods from the highest ordinal down to the
// partition (maxUnavailable at a time), OnDelete only when a user deletes
// them. Failed pods are deleted and come back under the same name.
//
// It reads through shared informers and writes only through the client, so
// it runs unchanged in-process against Wharf's API server and in tests
// against client-go's fake.
package statefulset

import (
	"context"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Controller syncs StatefulSets with their pods, claims and revisions.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder

	setLister      appslisters.StatefulSetLister
	podLister      corelisters.PodLister
	claimLister    corelisters.PersistentVolumeClaimLister
	revisionLister appslisters.ControllerRevisionLister
	synced         []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]
	now   func() time.Time
}

// New returns a StatefulSet controller reading from factory. The caller
// starts factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	setInformer := factory.Apps().V1().StatefulSets()
	podInformer := factory.Core().V1().Pods()
	claimInformer := factory.Core().V1().PersistentVolumeClaims()
	revInformer := factory.Apps().V1().ControllerRevisions()
	c := &Controller{
		logger:         logger.With("controller", "statefulset"),
		client:         client,
		recorder:       recorder,
		setLister:      setInformer.Lister(),
		podLister:      podInformer.Lister(),
		claimLister:    claimInformer.Lister(),
		revisionLister: revInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"}),
		now: time.Now,
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: setInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueue(obj.(*appsv1.StatefulSet)) },
			UpdateFunc: func(_, cur any) { c.enqueue(cur.(*appsv1.StatefulSet)) },
			DeleteFunc: c.deleteSet,
		}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
		// Claims and revisions are only read; their informers must have
		// synced before a sync trusts their listers.
		controllerutil.EventHandler{Informer: claimInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{}},
		controllerutil.EventHandler{Informer: revInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{}},
	)
	return c
}

// Run syncs StatefulSets with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("statefulset"))
}

func (c *Controller) enqueue(set *appsv1.StatefulSet) {
	c.queue.Add(set.Namespace + "/" + set.Name)
}
