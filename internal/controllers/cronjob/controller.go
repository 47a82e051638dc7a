// Package cronjob is Wharf's CronJob controller, modelled on Kubernetes'
// pkg/controller/cronjob (the "v2" controller): at each time a CronJob's
// schedule fires it creates a Job from spec.jobTemplate, named after the
// scheduled minute so that a time is never started twice, honours
// concurrencyPolicy, suspend and startingDeadlineSeconds, deletes the
// oldest finished Jobs beyond the history limits, and reports the active
// Jobs and the last schedule and success times in status.
//
// It does not poll: after each sync the CronJob is queued again for the
// next time its schedule fires (a delayed queue add on an injectable
// clock, so tests run in fake time), and Job events wake it in between.
// It creates and deletes Jobs and reads their status; running them is the
// Job controller's business.
package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// nextScheduleDelta pads each requeue past the scheduled time, as
// Kubernetes does, so that a clock running a little behind the one that
// computed the delay still finds the time due.
const nextScheduleDelta = 100 * time.Millisecond

// Controller starts the Jobs of CronJobs.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.WithTicker

	cjLister  batchlisters.CronJobLister
	jobLister batchlisters.JobLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock sets the clock the controller reads the time from and waits
// on (default: the real one).
func WithClock(c clock.WithTicker) Option {
	return func(ctl *Controller) { ctl.clock = c }
}

// New returns a CronJob controller reading CronJobs and Jobs from factory.
// The caller starts factory after New (so the informers New asked for
// exist) and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Option) *Controller {
	c := &Controller{
		logger:   logger.With("controller", "cronjob"),
		client:   client,
		recorder: recorder,
		clock:    clock.RealClock{},
	}
	for _, o := range opts {
		o(c)
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob", Clock: c.clock})
	cjInformer := factory.Batch().V1().CronJobs()
	jobInformer := factory.Batch().V1().Jobs()
	c.cjLister, c.jobLister = cjInformer.Lister(), jobInformer.Lister()
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: cjInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addCronJob,
			UpdateFunc: c.updateCronJob,
			DeleteFunc: c.deleteCronJob,
		}},
		controllerutil.EventHandler{Informer: jobInformer.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addJob,
			UpdateFunc: c.updateJob,
			DeleteFunc: c.deleteJob,
		}},
	)
	return c
}

// Run syncs CronJobs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("cronjob"))
}

func keyOf(namespace, name string) string {
	return fmt.Sprintf("%s/%s", namespace, name)
}
