// Package ttlafterfinished deletes finished Jobs whose
// spec.ttlSecondsAfterFinished has passed, like Kubernetes'
// ttl-after-finished controller: a Job is finished when it has a True
// Complete or Failed condition, and it expires ttlSecondsAfterFinished
// after that condition's lastTransitionTime. Expired Jobs are deleted with
// foreground propagation, so their pods go before them, and a uid
// precondition, so a Job recreated under the same name is not touched.
package ttlafterfinished

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Controller deletes expired finished Jobs.
type Controller struct {
	logger *slog.Logger
	client kubernetes.Interface
	clock  clock.WithTicker

	jobLister batchlisters.JobLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock injects a clock (tests use a fake one); the queue's delays
// follow it.
func WithClock(clk clock.WithTicker) Option { return func(c *Controller) { c.clock = clk } }

// New returns the controller on factory's Job informer. The caller starts
// factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Option) *Controller {
	inf := factory.Batch().V1().Jobs()
	c := &Controller{
		logger:    logger.With("controller", "ttlafterfinished"),
		client:    client,
		clock:     clock.RealClock{},
		jobLister: inf.Lister(),
	}
	for _, o := range opts {
		o(c)
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl-after-finished", Clock: c.clock})
	enqueue := func(obj any) {
		job := obj.(*batchv1.Job)
		if job.DeletionTimestamp == nil && needsCleanup(job) {
			c.queue.Add(job.Namespace + "/" + job.Name)
		}
	}
	c.synced = controllerutil.AddEventHandlers(c.logger, controllerutil.EventHandler{
		Informer: inf.Informer(),
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, cur any) { enqueue(cur) },
		},
	})
	return c
}

// Run processes Jobs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("job"))
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("job key %q: %w", key, err)
	}
	job, err := c.jobLister.Jobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get job %s: %w", key, err)
	}
	if expired, err := c.expired(key, job); err != nil || !expired {
		return err
	}
	// The cache may hold an old TTL: decide again on the stored Job.
	fresh, err := c.client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get job %s: %w", key, err)
	}
	if expired, err := c.expired(key, fresh); err != nil || !expired {
		return err
	}
	policy := metav1.DeletePropagationForeground
	err = c.client.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     metav1.NewUIDPreconditions(string(fresh.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete expired job %s: %w", key, err)
	}
	c.logger.Info("deleted finished job after its TTL", "job", key, "ttlSecondsAfterFinished", *fresh.Spec.TTLSecondsAfterFinished)
	return nil
}

// expired reports whether job's TTL has passed; if it has not, the key is
// queued again for when it will.
func (c *Controller) expired(key string, job *batchv1.Job) (bool, error) {
	if job.DeletionTimestamp != nil || !needsCleanup(job) {
		return false, nil
	}
	finishedAt, err := finishTime(job)
	if err != nil {
		return false, err
	}
	now := c.clock.Now()
	if finishedAt.After(now) {
		c.logger.Warn("job finished in the future, clocks may be skewed; its cleanup waits", "job", key, "finishedAt", finishedAt)
	}
	left := finishedAt.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second).Sub(now)
	if left <= 0 {
		return true, nil
	}
	c.queue.AddAfter(key, left)
	return false, nil
}

// needsCleanup: the Job has a TTL and is finished.
func needsCleanup(job *batchv1.Job) bool {
	return job.Spec.TTLSecondsAfterFinished != nil && finished(job) != nil
}

// finished returns the Job's True Complete or Failed condition.
func finished(job *batchv1.Job) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == v1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// errNoFinishTime: a finished Job whose condition has no time; nothing can
// say when it expires (the Job controller always sets it).
var errNoFinishTime = errors.New("finished job has no lastTransitionTime")

func finishTime(job *batchv1.Job) (time.Time, error) {
	c := finished(job)
	if c == nil || c.LastTransitionTime.IsZero() {
		return time.Time{}, fmt.Errorf("job %s/%s: %w", job.Namespace, job.Name, errNoFinishTime)
	}
	return c.LastTransitionTime.Time, nil
}
