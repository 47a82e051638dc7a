// Package job is Wharf's Job controller, modelled on Kubernetes'
// pkg/controller/job (as of Kubernetes 1.33, every feature gate of the Job
// API at its default): it runs a Job's pods to completion and reports the
// outcome in the Job's status.
//
// A Job's pods come from spec.template with the Job as controller and the
// tracking finalizer batch.kubernetes.io/job-tracking. The controller counts
// a finished pod in status.succeeded or status.failed only through
// status.uncountedTerminatedPods: it first records the pod's uid there, then
// removes the finalizer, then moves the uid to the counters. A pod deleted
// at any point is therefore counted exactly once, even across restarts of
// the controller.
//
// It keeps parallelism pods running (no more than the completions left),
// numbers them in Indexed completion mode (annotation, label, hostname and
// the JOB_COMPLETION_INDEX variable), waits an exponential back-off after
// failures before creating replacements, and ends the Job: Complete once
// enough pods succeeded (or a success policy matched), Failed once the
// backoffLimit, the activeDeadlineSeconds, a FailJob rule of the pod failure
// policy, or the per-index limits are exceeded. As in Kubernetes 1.31+, the
// terminal condition comes in two steps: SuccessCriteriaMet or
// FailureTarget first, then Complete or Failed once no pod of the Job is
// left running.
//
// It reads through shared informers and writes only through the client, so
// it runs unchanged in-process against Wharf's API server and in tests
// against client-go's fake.
package job

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Defaults, as Kubernetes' job controller.
const (
	// DefaultSyncBatchPeriod delays a sync after pod events and status
	// updates, so that a burst of them (many pods finishing at once) costs
	// one sync and one status write.
	DefaultSyncBatchPeriod = time.Second
	// DefaultPodFailureBackoff is the wait before replacing a failed pod;
	// it doubles with each failure since the last success, up to
	// MaxPodFailureBackoff.
	DefaultPodFailureBackoff = 10 * time.Second
	// MaxPodFailureBackoff caps the back-off. Kubernetes' documentation
	// says six minutes; its controller has used ten since 1.28.
	MaxPodFailureBackoff = 10 * time.Minute
)

// maxUncountedPods caps status.uncountedTerminatedPods, keeping the status
// small (about 20 KB of uids) and one big Job from starving the others.
const maxUncountedPods = 500

// maxPodCreateDeletePerSync caps the pods created or deleted in one sync.
const maxPodCreateDeletePerSync = 500

// slowStartInitialBatch is the first batch of pod creations; batches double
// while they succeed, so a creation refused (quota, admission) is refused
// once, not parallelism times.
const slowStartInitialBatch = 1

var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

// Controller syncs Jobs with their pods.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	pods     controllerutil.PodControl
	clock    clock.WithTicker

	jobLister batchlisters.JobLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue       workqueue.TypedRateLimitingInterface[string]
	orphanQueue workqueue.TypedRateLimitingInterface[string]

	expectations *controllerutil.Expectations
	// finalizerExpectations are the pods whose tracking finalizer this
	// controller removed but has not yet seen removed: until it does, its
	// cache still shows them with the finalizer, and counting them again
	// would count them twice.
	finalizerExpectations *uidExpectations
	backoff               *backoffStore
	written               *statusWrites

	batchPeriod             time.Duration
	backoffBase, backoffMax time.Duration
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock injects a clock (tests use a fake one). The work queue delays
// follow it too.
func WithClock(clk clock.WithTicker) Option { return func(c *Controller) { c.clock = clk } }

// WithSyncBatchPeriod sets how long a sync waits after a pod event or a
// status update (default DefaultSyncBatchPeriod; 0 syncs at once).
func WithSyncBatchPeriod(d time.Duration) Option { return func(c *Controller) { c.batchPeriod = d } }

// WithPodFailureBackoff sets the back-off before replacing failed pods:
// base after the first failure, doubling up to maxDelay.
func WithPodFailureBackoff(base, maxDelay time.Duration) Option {
	return func(c *Controller) { c.backoffBase, c.backoffMax = base, maxDelay }
}

// New returns a Job controller reading Jobs and Pods from factory. The
// caller starts factory after New (so the informers New asked for exist)
// and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Option) *Controller {
	jobInformer := factory.Batch().V1().Jobs()
	podInformer := factory.Core().V1().Pods()
	c := &Controller{
		logger:                logger.With("controller", "job"),
		client:                client,
		recorder:              recorder,
		pods:                  controllerutil.PodControl{Client: client, Recorder: recorder, Logger: logger.With("controller", "job"), Kind: "job"},
		clock:                 clock.RealClock{},
		jobLister:             jobInformer.Lister(),
		podLister:             podInformer.Lister(),
		expectations:          controllerutil.NewExpectations(),
		finalizerExpectations: newUIDExpectations(),
		backoff:               newBackoffStore(),
		written:               newStatusWrites(),
		batchPeriod:           DefaultSyncBatchPeriod,
		backoffBase:           DefaultPodFailureBackoff,
		backoffMax:            MaxPodFailureBackoff,
	}
	for _, o := range opts {
		o(c)
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "job", Clock: c.clock})
	c.orphanQueue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "job-orphan-pod", Clock: c.clock})
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: jobInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addJob,
			UpdateFunc: c.updateJob,
			DeleteFunc: c.deleteJob,
		}},
		controllerutil.EventHandler{Informer: podInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addPod,
			UpdateFunc: c.updatePod,
			DeleteFunc: func(obj any) { c.deletePod(obj, true) },
		}},
	)
	return c
}

// Run syncs Jobs with workers goroutines, and removes the tracking
// finalizer from pods no Job counts any more with one more, until ctx is
// done.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	wg.Go(func() {
		controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("job"))
	})
	wg.Go(func() {
		if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			c.orphanQueue.ShutDown()
			return
		}
		controllerutil.RunWorkers(ctx, c.logger, c.orphanQueue, 1, c.syncOrphanPod,
			controllerutil.KeyAttr("pod"), controllerutil.FailureMessage("removing the tracking finalizer failed, requeueing"))
	})
	wg.Wait()
}

// enqueueNow syncs the Job at once: it was created, deleted or its spec
// changed.
func (c *Controller) enqueueNow(job *batchv1.Job) {
	c.queue.Add(keyOf(job.Namespace, job.Name))
}

// enqueueBatched syncs the Job after the batch period: pod events and
// status updates come in bursts.
func (c *Controller) enqueueBatched(job *batchv1.Job) {
	c.enqueueAfter(job, c.batchPeriod)
}

func (c *Controller) enqueueAfter(job *batchv1.Job, d time.Duration) {
	c.queue.AddAfter(keyOf(job.Namespace, job.Name), d)
}

func (c *Controller) enqueueOrphanPod(pod *v1.Pod) {
	c.orphanQueue.Add(keyOf(pod.Namespace, pod.Name))
}

func keyOf(namespace, name string) string {
	return fmt.Sprintf("%s/%s", namespace, name)
}

// resolveControllerRef returns the Job ref points to, if it is still the
// same object (a Job recreated under the same name is not).
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *batchv1.Job {
	job, _ := controllerutil.ResolveControllerRef(ref, controllerKind.Kind, c.jobLister.Jobs(namespace).Get)
	return job
}
