// Package daemonset is Wharf's DaemonSet controller, modelled on Kubernetes'
// pkg/controller/daemon: it keeps one pod of every DaemonSet on each node
// the DaemonSet's template fits (nodeSelector, required node affinity,
// taints against tolerations), deletes its pods from nodes that stopped
// fitting, replaces failed pods with back-off, records the template's
// history in ControllerRevisions (so `kubectl rollout history/undo` work),
// rolls template changes out node by node (RollingUpdate with maxUnavailable
// or maxSurge, or OnDelete) and reports the counts `kubectl rollout status`
// reads.
//
// Pods are not bound here: each carries a required node affinity on
// metadata.name of its node, and the default scheduler binds it. Node events
// are handled at once, so a new node gets its pods within the time of one
// create and one bind.
package daemonset

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
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// burstReplicas caps the pods created or deleted in one sync, as upstream.
const burstReplicas = 250

// Failed daemon pods are deleted (and so replaced) with an exponential
// back-off per node, as upstream: a pod that fails at once must not spin.
const (
	failedPodsBackoffBase = time.Second
	failedPodsBackoffMax  = 15 * time.Minute
)

// The events Kubernetes' DaemonSet controller records, beside PodControl's.
const (
	reasonSelectingAll       = "SelectingAll"
	reasonFailedDaemonPod    = "FailedDaemonPod"
	reasonSucceededDaemonPod = "SucceededDaemonPod"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Controller syncs DaemonSets with their pods and revisions.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	pods     controllerutil.PodControl

	dsLister      appslisters.DaemonSetLister
	historyLister appslisters.ControllerRevisionLister
	podLister     corelisters.PodLister
	nodeLister    corelisters.NodeLister
	synced        []cache.InformerSynced

	queue        workqueue.TypedRateLimitingInterface[string]
	expectations *controllerutil.Expectations
	backoff      *flowcontrol.Backoff
	burst        int
	now          func() time.Time
}

// New returns a DaemonSet controller reading DaemonSets, ControllerRevisions,
// Pods and Nodes from factory. The caller starts factory after New and
// before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	dsInformer := factory.Apps().V1().DaemonSets()
	historyInformer := factory.Apps().V1().ControllerRevisions()
	podInformer := factory.Core().V1().Pods()
	nodeInformer := factory.Core().V1().Nodes()
	log := logger.With("controller", "daemonset")
	c := &Controller{
		logger:        log,
		client:        client,
		recorder:      recorder,
		pods:          controllerutil.PodControl{Client: client, Recorder: recorder, Logger: log, Kind: "daemonset"},
		dsLister:      dsInformer.Lister(),
		historyLister: historyInformer.Lister(),
		podLister:     podInformer.Lister(),
		nodeLister:    nodeInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"}),
		expectations: controllerutil.NewExpectations(),
		backoff:      flowcontrol.NewBackOff(failedPodsBackoffBase, failedPodsBackoffMax),
		burst:        burstReplicas,
		now:          time.Now,
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: dsInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addDaemonSet,
			UpdateFunc: c.updateDaemonSet,
			DeleteFunc: c.deleteDaemonSet,
		}},
		controllerutil.EventHandler{Informer: historyInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addHistory,
			UpdateFunc: func(_, cur any) { c.addHistory(cur) },
			DeleteFunc: c.addHistory,
		}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: c.deletePod,
		}},
		controllerutil.EventHandler{Informer: nodeInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addNode,
			UpdateFunc: c.updateNode,
			DeleteFunc: c.deleteNode,
		}},
	)
	return c
}

// Run syncs DaemonSets with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	go c.gcBackoff(ctx)
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("daemonset"))
}

// gcBackoff forgets back-off entries that have not moved for a while, as
// upstream does every minute.
func (c *Controller) gcBackoff(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.backoff.GC()
		}
	}
}

func (c *Controller) enqueue(ds *appsv1.DaemonSet) {
	c.queue.Add(keyOf(ds.Namespace, ds.Name))
}

func (c *Controller) enqueueAfter(ds *appsv1.DaemonSet, d time.Duration) {
	c.queue.AddAfter(keyOf(ds.Namespace, ds.Name), d)
}

func keyOf(namespace, name string) string {
	return fmt.Sprintf("%s/%s", namespace, name)
}
