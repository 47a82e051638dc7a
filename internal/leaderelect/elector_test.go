package leaderelect

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"wharf.dev/wharf/internal/testwait"
)

// candidate runs an Elector and records its terms.
type candidate struct {
	e      *Elector
	cancel context.CancelFunc
	done   chan struct{}
	terms  atomic.Int32 // terms started
	active atomic.Bool  // lead is running
	fail   atomic.Bool  // lead returns an error at once
}

func startCandidate(t *testing.T, client *fake.Clientset, id string, lease time.Duration) *candidate {
	t.Helper()
	e, err := New(Config{
		Logger: quiet, Client: client, Namespace: "kube-system", Name: "wharf-controllers", Identity: id,
		LeaseDuration: lease, RenewDeadline: lease * 8 / 10, RetryPeriod: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		e.Run(ctx, func(ctx context.Context) error {
			c.terms.Add(1)
			if c.fail.Load() {
				return errors.New("controllers failed to start")
			}
			c.active.Store(true)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // work winding down
			c.active.Store(false)
			return nil
		})
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *candidate) stop() {
	c.cancel()
	<-c.done
}

func (c *candidate) leading() bool { return c.active.Load() && c.e.Fence().Held() }

// TestElector: one leader at a time; a leader whose renewals fail closes
// its fence, and stops its work once another holds the lease; a clean stop
// releases the lease so another takes over without waiting for it to
// expire; Run returns only after the work stopped; work resumed after
// another's term starts afresh.
func TestElector(t *testing.T) {
	client := fake.NewClientset()
	// Renewals by "a" fail while blockA is set (a partition, or a pause).
	var blockA atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		l := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if blockA.Load() && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == "a" {
			return true, nil, errors.New("etcd unreachable")
		}
		return false, nil, nil
	})
	a := startCandidate(t, client, "a", time.Second)
	testwait.For(t, "a to lead", func() (bool, string) { return a.leading(), fmt.Sprint(a.terms.Load()) })
	b := startCandidate(t, client, "b", time.Second)
	<-b.e.Observed()
	if h := b.e.Holder(); h != "a" {
		t.Fatalf("b observed holder %q, want a", h)
	}

	blockA.Store(true)
	testwait.For(t, "a's fence to close once its renewals fail", func() (bool, string) {
		return !a.e.Fence().Held(), ""
	})
	testwait.For(t, "b to take over", func() (bool, string) { return b.leading(), b.e.Holder() })
	if a.e.Fence().Held() {
		t.Fatal("a's fence is open while b leads")
	}
	testwait.For(t, "a's work to stop once b holds the lease", func() (bool, string) { return !a.active.Load(), "" })
	blockA.Store(false)

	// b stops cleanly: a, a candidate again, takes over at once (the
	// release empties the lease) and starts its work afresh.
	b.stop()
	if b.active.Load() || b.e.Fence().Held() {
		t.Fatal("b's work or fence outlived its Run")
	}
	lease, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "wharf-controllers", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h == "b" {
		t.Fatalf("lease still held by b after its clean stop")
	}
	testwait.For(t, "a to lead again", func() (bool, string) { return a.leading(), fmt.Sprint(a.terms.Load()) })
	if n := a.terms.Load(); n != 2 {
		t.Fatalf("a started its work %d times, want 2", n)
	}
}

// TestElectorFailedTerm: work that fails to start releases the lease and is
// tried again, without stopping the candidate.
func TestElectorFailedTerm(t *testing.T) {
	client := fake.NewClientset()
	a := startCandidate(t, client, "a", time.Second)
	a.fail.Store(true)
	testwait.For(t, "a to retry its failing work", func() (bool, string) { return a.terms.Load() >= 3, fmt.Sprint(a.terms.Load()) })
	a.fail.Store(false)
	testwait.For(t, "a to lead", func() (bool, string) { return a.leading(), "" })
}

// TestElectorRestartSameIdentity: a process restarted with the identity of
// the lease's unexpired holder takes it back at once, where another
// identity would wait for the lease (an hour here) to expire.
func TestElectorRestartSameIdentity(t *testing.T) {
	client := fake.NewClientset()
	var dead atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if dead.Load() {
			return true, nil, errors.New("dead")
		}
		return false, nil, nil
	})
	const lease = time.Hour
	first := startCandidate(t, client, "a", lease)
	testwait.For(t, "the first process to lead", func() (bool, string) { return first.leading(), "" })
	// It dies without releasing: its last writes fail.
	dead.Store(true)
	first.stop()
	dead.Store(false)
	l, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "wharf-controllers", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "a" {
		t.Fatalf("the dead process's lease: %v %+v", err, l)
	}

	other := startCandidate(t, client, "b", lease)
	again := startCandidate(t, client, "a", lease)
	testwait.For(t, "the restarted process to lead", func() (bool, string) { return again.leading(), "" })
	if other.leading() {
		t.Fatal("another identity took an unexpired lease")
	}
}

// TestElectorKeepsWorkOnQuickReacquire: a lone leader whose renewals fail
// for a while closes its fence, and, getting the lease back with nobody in
// between, opens it again without restarting its work; one that does not
// get it back within a lease duration stops its work.
func TestElectorKeepsWorkOnQuickReacquire(t *testing.T) {
	client := fake.NewClientset()
	var block atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if block.Load() {
			return true, nil, errors.New("API overloaded")
		}
		return false, nil, nil
	})
	a := startCandidate(t, client, "a", time.Second)
	testwait.For(t, "a to lead", func() (bool, string) { return a.leading(), "" })

	block.Store(true)
	testwait.For(t, "a's fence to close", func() (bool, string) { return !a.e.Fence().Held(), "" })
	block.Store(false)
	testwait.For(t, "a to lead again", func() (bool, string) { return a.leading(), "" })
	if n := a.terms.Load(); n != 1 {
		t.Fatalf("work started %d times, want 1: a quick re-acquire restarted it", n)
	}

	// Renewals fail for longer than a lease: the work stops, and starts
	// afresh once the lease is back.
	block.Store(true)
	testwait.For(t, "a's work to stop", func() (bool, string) { return !a.active.Load(), "" })
	block.Store(false)
	testwait.For(t, "a to lead again", func() (bool, string) { return a.leading(), fmt.Sprint(a.terms.Load()) })
	if n := a.terms.Load(); n != 2 {
		t.Fatalf("work started %d times, want 2", n)
	}
}
