// Package disruption is Wharf's disruption controller, modelled on
// Kubernetes' pkg/controller/disruption: it computes the status of every
// policy/v1 PodDisruptionBudget, which the API server's eviction
// subresource reads to allow or refuse an eviction.
//
// For each budget it finds the pods its selector matches, the number of
// pods expected (the pods themselves for an integer minAvailable, else the
// scale of their controllers: Deployments and ReplicaSets from the
// informers, any other kind through its scale subresource, StatefulSets and
// custom resources included), how many must stay healthy, how many are
// healthy (Ready, not terminating, not just evicted) and so how many
// disruptions are allowed, with the DisruptionAllowed condition. Pods the
// eviction subresource recorded in status.disruptedPods stop counting as
// healthy until they go, or for two minutes at most. When the computation
// fails, the budget allows no disruption (condition reason SyncFailed).
//
// It also resets a pod's DisruptionTarget condition that an eviction set
// but that no deletion followed within two minutes.
package disruption

import (
	"context"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

const (
	// DeletionTimeout is how long a pod recorded in a budget's
	// disruptedPods stops counting as healthy: the eviction that recorded
	// it is expected to have deleted it by then.
	DeletionTimeout = 2 * time.Minute
	// StalePodDisruptionTimeout is how long a pod may keep a
	// DisruptionTarget condition set by an eviction without being deleted.
	StalePodDisruptionTimeout = 2 * time.Minute
)

// Controller keeps PodDisruptionBudgets' status.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder

	pdbLister  policylisters.PodDisruptionBudgetLister
	podLister  corelisters.PodLister
	rsLister   appslisters.ReplicaSetLister
	depLister  appslisters.DeploymentLister
	synced     []cache.InformerSynced
	scaleOfRef scaleFunc

	queue      workqueue.TypedRateLimitingInterface[string]
	staleQueue workqueue.TypedRateLimitingInterface[string]
	now        func() time.Time
}

// New returns a disruption controller reading budgets, pods, ReplicaSets
// and Deployments from factory. The caller starts factory after New and
// before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	pdbInformer := factory.Policy().V1().PodDisruptionBudgets()
	podInformer := factory.Core().V1().Pods()
	rsInformer := factory.Apps().V1().ReplicaSets()
	depInformer := factory.Apps().V1().Deployments()
	c := &Controller{
		logger:    logger.With("controller", "disruption"),
		client:    client,
		recorder:  recorder,
		pdbLister: pdbInformer.Lister(),
		podLister: podInformer.Lister(),
		rsLister:  rsInformer.Lister(),
		depLister: depInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption"}),
		staleQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption-stale-pods"}),
		now: time.Now,
	}
	c.scaleOfRef = discoveryScale(client)
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: pdbInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueue(obj.(*policyv1.PodDisruptionBudget)) },
			UpdateFunc: func(_, cur any) { c.enqueue(cur.(*policyv1.PodDisruptionBudget)) },
			DeleteFunc: func(obj any) {
				if pdb, ok := controllerutil.DeletedObject[*policyv1.PodDisruptionBudget](obj); ok {
					c.enqueue(pdb)
				}
			},
		}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
		// Listers only: scale changes show as pods coming and going.
		controllerutil.EventHandler{Informer: rsInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{}},
		controllerutil.EventHandler{Informer: depInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{}},
	)
	return c
}

// Run syncs budgets, and clears stale pod conditions, with workers
// goroutines each until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.queue.ShutDown()
	defer c.staleQueue.ShutDown()
	c.logger.Info("starting")
	defer c.logger.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		controllerutil.RunWorkers(ctx, c.logger, c.queue, workers, c.sync, controllerutil.KeyAttr("poddisruptionbudget"))
	})
	wg.Go(func() {
		controllerutil.RunWorkers(ctx, c.logger, c.staleQueue, 1, c.syncStalePod, controllerutil.KeyAttr("pod"))
	})
	wg.Wait()
}

func (c *Controller) enqueue(pdb *policyv1.PodDisruptionBudget) {
	c.queue.Add(pdb.Namespace + "/" + pdb.Name)
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*v1.Pod)
	if pdb := c.pdbForPod(pod); pdb != nil {
		c.enqueue(pdb)
	}
	if stale, after := c.staleDisruption(pod); stale {
		c.staleQueue.AddAfter(pod.Namespace+"/"+pod.Name, after)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, curPod := old.(*v1.Pod), cur.(*v1.Pod)
	if oldPod.ResourceVersion == curPod.ResourceVersion {
		return
	}
	c.addPod(curPod)
	// A pod that left a budget's selector changes that budget too.
	if !labels.Equals(oldPod.Labels, curPod.Labels) {
		if pdb := c.pdbForPod(oldPod); pdb != nil {
			c.enqueue(pdb)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := controllerutil.DeletedObject[*v1.Pod](obj)
	if !ok {
		return
	}
	if pdb := c.pdbForPod(pod); pdb != nil {
		c.enqueue(pdb)
	}
}

// pdbForPod returns the budget covering pod, the first by name when more
// than one does (with an event on the pod, as Kubernetes).
func (c *Controller) pdbForPod(pod *v1.Pod) *policyv1.PodDisruptionBudget {
	// The lister's match: in policy/v1 an empty selector selects every
	// pod of the namespace.
	pdbs, err := c.pdbLister.GetPodPodDisruptionBudgets(pod)
	if err != nil || len(pdbs) == 0 {
		return nil
	}
	if len(pdbs) > 1 {
		c.recorder.Eventf(pod, v1.EventTypeWarning, "MultiplePodDisruptionBudgets",
			"Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, pdbs[0].Name)
	}
	return pdbs[0]
}
