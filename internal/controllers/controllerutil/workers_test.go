package controllerutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

func TestRunWorkers(t *testing.T) {
	boom := errors.New("boom")
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "k", errors.New("stale"))
	tests := []struct {
		name      string
		workers   int
		opts      []WorkerOption
		errs      []error // returned by the first calls; then nil
		wantCalls int
		wantLog   []string
	}{
		{name: "succeeds at once", workers: 2, wantCalls: 1},
		{
			name: "fails twice then succeeds", workers: 2, errs: []error{boom, boom}, wantCalls: 3,
			wantLog: []string{
				`level=WARN msg="sync failed, requeueing" key=k err=boom`,
				`level=WARN msg="sync failed, requeueing" key=k err=boom`,
			},
		},
		{
			name: "conflict at debug level", workers: 1, errs: []error{fmt.Errorf("update: %w", conflict)}, wantCalls: 2,
			wantLog: []string{`level=DEBUG msg="sync failed, requeueing" key=k err="update: Operation cannot be fulfilled on pods \"k\": stale"`},
		},
		{name: "ErrRequeue is not logged", workers: 1, errs: []error{ErrRequeue, fmt.Errorf("waiting: %w", ErrRequeue)}, wantCalls: 3},
		{
			name: "no workers still runs one", workers: 0, errs: []error{boom}, wantCalls: 2,
			opts:    []WorkerOption{KeyAttr("pod"), FailureMessage("eviction failed, retrying")},
			wantLog: []string{`level=WARN msg="eviction failed, retrying" pod=k err=boom`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			// No back-off: a requeued key comes straight back.
			queue := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](0, 0))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			var mu sync.Mutex
			calls := 0
			succeeded := make(chan struct{})
			syncFn := func(_ context.Context, key string) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				if calls == len(tt.errs)+1 {
					close(succeeded)
				}
				return nil
			}

			done := make(chan struct{})
			go func() {
				defer close(done)
				RunWorkers(ctx, log, queue, tt.workers, syncFn, tt.opts...)
			}()
			queue.Add("k")
			<-succeeded
			cancel()
			<-done

			if calls != tt.wantCalls {
				t.Errorf("sync called %d times, want %d", calls, tt.wantCalls)
			}
			if n := queue.NumRequeues("k"); n != 0 {
				t.Errorf("NumRequeues = %d after success, want 0 (forgotten)", n)
			}
			if !queue.ShuttingDown() {
				t.Error("queue not shut down after RunWorkers returned")
			}
			got := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.wantLog, got); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcessNextAfterShutDown(t *testing.T) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	queue.ShutDown()
	called := false
	syncFn := func(context.Context, string) error { called = true; return nil }
	if ProcessNext(context.Background(), slog.New(slog.DiscardHandler), queue, syncFn) {
		t.Error("ProcessNext = true on a shut-down queue, want false")
	}
	if called {
		t.Error("sync called on a shut-down queue")
	}
}

// TestRun: Run syncs keys once the caches have synced, and shuts the queue
// down when ctx ends, also while it is still waiting for the caches.
func TestRun(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("synced", func(t *testing.T) {
		queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
		ctx, cancel := context.WithCancel(context.Background())
		synced := make(chan string, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, log, queue, []cache.InformerSynced{func() bool { return true }}, 1,
				func(_ context.Context, key string) error { synced <- key; return nil })
		}()
		queue.Add("k")
		if key := <-synced; key != "k" {
			t.Errorf("synced %q, want k", key)
		}
		cancel()
		<-done
		if !queue.ShuttingDown() {
			t.Error("queue not shut down after Run returned")
		}
	})
	t.Run("never synced", func(t *testing.T) {
		queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		Run(ctx, log, queue, []cache.InformerSynced{func() bool { return false }}, 1,
			func(context.Context, string) error { t.Error("sync called before the caches synced"); return nil })
		if !queue.ShuttingDown() {
			t.Error("queue not shut down after Run returned")
		}
	})
}
