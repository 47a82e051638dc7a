package controllerutil

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// ErrRequeue, returned by a sync function (or wrapped in its error), retries
// the key with back-off without logging: the sync is waiting for something,
// it did not fail.
var ErrRequeue = errors.New("requeue")

// WorkerOption changes how RunWorkers and ProcessNext log a failed sync.
type WorkerOption func(*workerOptions)

type workerOptions struct {
	keyAttr string
	message string
}

// KeyAttr sets the log attribute naming the failed key (default "key"), so
// the line matches the controller's other logs about the same object.
func KeyAttr(name string) WorkerOption {
	return func(o *workerOptions) { o.keyAttr = name }
}

// FailureMessage sets the message logged when a sync fails (default "sync
// failed, requeueing").
func FailureMessage(msg string) WorkerOption {
	return func(o *workerOptions) { o.message = msg }
}

func newWorkerOptions(opts []WorkerOption) *workerOptions {
	o := &workerOptions{keyAttr: "key", message: "sync failed, requeueing"}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// RunWorkers calls syncFn for the keys of queue with max(workers, 1)
// goroutines until ctx is done, then shuts queue down and returns once the
// goroutines have finished. A key whose sync fails is requeued with rate
// limiting, one that succeeds is forgotten; see ProcessNext.
func RunWorkers[T comparable](ctx context.Context, log *slog.Logger, queue workqueue.TypedRateLimitingInterface[T], workers int, syncFn func(context.Context, T) error, opts ...WorkerOption) {
	o := newWorkerOptions(opts)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for processNext(ctx, log, queue, syncFn, o) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
}

// Run is a controller's Run: it logs "starting", waits for the informers'
// handlers in synced to have synced, then runs RunWorkers until ctx is done,
// and logs "stopped". queue is shut down however Run returns.
func Run[T comparable](ctx context.Context, log *slog.Logger, queue workqueue.TypedRateLimitingInterface[T], synced []cache.InformerSynced, workers int, syncFn func(context.Context, T) error, opts ...WorkerOption) {
	defer queue.ShutDown()
	log.Info("starting")
	defer log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	RunWorkers(ctx, log, queue, workers, syncFn, opts...)
}

// ProcessNext waits for one key of queue and syncs it, as a RunWorkers
// goroutine does; tests use it to drive a controller step by step. It
// reports false once queue is shut down.
//
// A failed key is requeued with rate limiting and logged: conflicts at
// debug level, since they are routine (the cache was a write behind), other
// errors at warn, and ErrRequeue not at all.
func ProcessNext[T comparable](ctx context.Context, log *slog.Logger, queue workqueue.TypedRateLimitingInterface[T], syncFn func(context.Context, T) error, opts ...WorkerOption) bool {
	return processNext(ctx, log, queue, syncFn, newWorkerOptions(opts))
}

func processNext[T comparable](ctx context.Context, log *slog.Logger, queue workqueue.TypedRateLimitingInterface[T], syncFn func(context.Context, T) error, o *workerOptions) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	if err := syncFn(ctx, key); err != nil {
		if !errors.Is(err, ErrRequeue) {
			level := slog.LevelWarn
			if apierrors.IsConflict(err) {
				level = slog.LevelDebug
			}
			log.Log(ctx, level, o.message, o.keyAttr, key, "err", err)
		}
		queue.AddRateLimited(key)
		return true
	}
	queue.Forget(key)
	return true
}
