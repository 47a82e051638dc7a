// Package deployment is Wharf's Deployment controller, modelled on
// Kubernetes' pkg/controller/deployment. A Deployment owns one ReplicaSet
// per pod template it has run, named "<deployment>-<pod-template-hash>"; the
// controller rolls pods over from the old ReplicaSets to the one matching
// the current template (RollingUpdate within maxSurge/maxUnavailable, or
// Recreate), scales them proportionally when spec.replicas changes, keeps
// the revision annotations kubectl rollout history/undo read, and reports
// the status and conditions kubectl rollout status waits on.
//
// Pods are the ReplicaSet controller's business; this one only sizes
// ReplicaSets. It reads through shared informers and writes through the
// client only.
package deployment

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

var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Controller rolls Deployments out through ReplicaSets.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder

	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]
	now   func() time.Time
}

// New returns a Deployment controller reading Deployments, ReplicaSets and
// Pods from factory. The caller starts factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	dInformer := factory.Apps().V1().Deployments()
	rsInformer := factory.Apps().V1().ReplicaSets()
	podInformer := factory.Core().V1().Pods()
	c := &Controller{
		logger:    logger.With("controller", "deployment"),
		client:    client,
		recorder:  recorder,
		dLister:   dInformer.Lister(),
		rsLister:  rsInformer.Lister(),
		podLister: podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment"}),
		now: time.Now,
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: dInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{AddFunc: c.addDeployment, UpdateFunc: c.updateDeployment, DeleteFunc: c.deleteDeployment}},
		controllerutil.EventHandler{Informer: rsInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{AddFunc: c.addReplicaSet, UpdateFunc: c.updateReplicaSet, DeleteFunc: c.deleteReplicaSet}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{DeleteFunc: c.deletePod}},
	)
	return c
}

// Run syncs Deployments with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("deployment"))
}

func keyOf(namespace, name string) string {
	return namespace + "/" + name
}

func (c *Controller) enqueue(d *appsv1.Deployment) {
	c.queue.Add(keyOf(d.Namespace, d.Name))
}

func (c *Controller) enqueueAfter(d *appsv1.Deployment, after time.Duration) {
	c.queue.AddAfter(keyOf(d.Namespace, d.Name), after)
}

func (c *Controller) enqueueRateLimited(d *appsv1.Deployment) {
	c.queue.AddRateLimited(keyOf(d.Namespace, d.Name))
}
