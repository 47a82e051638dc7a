package ttlafterfinished

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func finishedJob(name string, ttl *int32, cond batchv1.JobConditionType, at time.Time) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec:       batchv1.JobSpec{TTLSecondsAfterFinished: ttl},
	}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
	}
	return j
}

func TestTTLAfterFinished(t *testing.T) {
	tests := []struct {
		name string
		job  *batchv1.Job
		// wantDeletedAfter: how long after t0 the Job goes; 0 never.
		wantDeletedAfter time.Duration
	}{
		{"complete, ttl 60s", finishedJob("done", ptr.To[int32](60), batchv1.JobComplete, t0), 60 * time.Second},
		{"failed, ttl 0: at once", finishedJob("failed", ptr.To[int32](0), batchv1.JobFailed, t0), time.Nanosecond},
		{"finished 30s ago, ttl 100s", finishedJob("older", ptr.To[int32](100), batchv1.JobComplete, t0.Add(-30*time.Second)), 70 * time.Second},
		{"no ttl: kept", finishedJob("keep", nil, batchv1.JobComplete, t0), 0},
		{"not finished: kept", finishedJob("running", ptr.To[int32](0), "", t0), 0},
		{"only FailureTarget: not finished yet", finishedJob("target", ptr.To[int32](0), batchv1.JobFailureTarget, t0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(tt.job)
			var mu sync.Mutex
			var deletes []metav1.DeleteOptions
			cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				deletes = append(deletes, a.(k8stesting.DeleteActionImpl).GetDeleteOptions())
				mu.Unlock()
				return false, nil, nil
			})
			clk := clocktesting.NewFakeClock(t0)
			factory := informers.NewSharedInformerFactory(cs, 0)
			c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), cs, factory, WithClock(clk))
			ctx, cancel := context.WithCancel(context.Background())
			factory.Start(ctx.Done())
			factory.WaitForCacheSync(ctx.Done())
			var wg sync.WaitGroup
			wg.Go(func() { c.Run(ctx, 1) })
			defer func() { cancel(); wg.Wait(); factory.Shutdown() }()

			gone := func() bool {
				_, err := cs.BatchV1().Jobs("ns").Get(ctx, tt.job.Name, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			}
			// Let the controller see the Job and settle at t0.
			time.Sleep(50 * time.Millisecond)
			if tt.wantDeletedAfter == 0 {
				clk.Step(24 * time.Hour)
				time.Sleep(50 * time.Millisecond)
				if gone() {
					t.Fatal("deleted, want kept")
				}
				return
			}
			if tt.wantDeletedAfter > time.Nanosecond {
				if gone() {
					t.Fatal("deleted at once")
				}
				// A second short of the TTL: still there.
				clk.Step(tt.wantDeletedAfter - time.Second)
				time.Sleep(50 * time.Millisecond)
				if gone() {
					t.Fatalf("deleted %v after t0, want %v", tt.wantDeletedAfter-time.Second, tt.wantDeletedAfter)
				}
				clk.Step(time.Second)
			}
			testwait.For(t, "the job deleted", func() (bool, string) { return gone(), "" })
			mu.Lock()
			defer mu.Unlock()
			if len(deletes) != 1 {
				t.Fatalf("%d deletes, want 1", len(deletes))
			}
			d := deletes[0]
			if d.PropagationPolicy == nil || *d.PropagationPolicy != metav1.DeletePropagationForeground {
				t.Errorf("propagation %v, want Foreground", d.PropagationPolicy)
			}
			if d.Preconditions == nil || d.Preconditions.UID == nil || *d.Preconditions.UID != tt.job.UID {
				t.Errorf("preconditions %+v, want the job's uid", d.Preconditions)
			}
		})
	}
}

// TestTTLChangedBeforeExpiry: the TTL is read again from the server before
// deleting; a longer one postpones the deletion.
func TestTTLChangedBeforeExpiry(t *testing.T) {
	job := finishedJob("done", ptr.To[int32](10), batchv1.JobComplete, t0)
	cs := fake.NewClientset(job)
	clk := clocktesting.NewFakeClock(t0)
	factory := informers.NewSharedInformerFactory(cs, 0)
	c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), cs, factory, WithClock(clk))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	// The cache still says 10s; the server now says an hour.
	fresh := job.DeepCopy()
	fresh.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	cs.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, fresh.DeepCopy(), nil
	})
	clk.Step(11 * time.Second)
	if err := c.sync(ctx, "ns/done"); err != nil {
		t.Fatal(err)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "delete" {
			t.Fatalf("job deleted on its stale TTL: %v", a)
		}
	}
}
