// Package replicaset is Wharf's ReplicaSet controller, modelled on
// Kubernetes' pkg/controller/replicaset: it keeps spec.replicas active pods
// for every ReplicaSet, adopting matching orphans and releasing pods that no
// longer match, and reports replicas, readiness and availability in status.
//
// It reads through shared informers and writes only through the client, so
// it runs unchanged in-process against Wharf's API server (loopback client)
// and in tests against client-go's fake.
package replicaset

import (
	"context"
	"fmt"
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

// burstReplicas caps the pods created or deleted in one sync, so one huge
// scale does not monopolise the API server; the next sync does the rest.
const burstReplicas = 500

// statusUpdateRetries is how often a status write is retried with a fresh
// read after a conflict before the sync fails and is requeued.
const statusUpdateRetries = 1

var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Controller syncs ReplicaSets with their pods.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	pods     controllerutil.PodControl

	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue        workqueue.TypedRateLimitingInterface[string]
	expectations *controllerutil.Expectations
	burst        int
	now          func() time.Time
}

// New returns a ReplicaSet controller reading ReplicaSets and Pods from
// factory. The caller starts factory after New (so the informers New asked
// for exist) and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	rsInformer := factory.Apps().V1().ReplicaSets()
	podInformer := factory.Core().V1().Pods()
	c := &Controller{
		logger:    logger.With("controller", "replicaset"),
		client:    client,
		recorder:  recorder,
		pods:      controllerutil.PodControl{Client: client, Recorder: recorder, Logger: logger.With("controller", "replicaset"), Kind: "replicaset"},
		rsLister:  rsInformer.Lister(),
		podLister: podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "replicaset"}),
		expectations: controllerutil.NewExpectations(),
		burst:        burstReplicas,
		now:          time.Now,
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: rsInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addRS,
			UpdateFunc: c.updateRS,
			DeleteFunc: c.deleteRS,
		}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
	)
	return c
}

// Run syncs ReplicaSets with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("replicaset"))
}

func (c *Controller) enqueue(rs *appsv1.ReplicaSet) {
	c.queue.Add(keyOf(rs.Namespace, rs.Name))
}

func (c *Controller) enqueueAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	c.queue.AddAfter(keyOf(rs.Namespace, rs.Name), d)
}

func keyOf(namespace, name string) string {
	return fmt.Sprintf("%s/%s", namespace, name)
}
