package leaderelect

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// slowLock is an in-memory resourcelock.Interface whose writes take took
// on the fake clock and fail with err; it notes whether the fence was held
// when each write was sent.
type slowLock struct {
	resourcelock.Interface // not called
	clk                    *clocktesting.FakePassiveClock
	fence                  *Fence
	took                   time.Duration
	err                    error
	heldAtSend             []bool
}

func (l *slowLock) Identity() string { return "me" }
func (l *slowLock) write(context.Context, resourcelock.LeaderElectionRecord) error {
	l.heldAtSend = append(l.heldAtSend, l.fence.Held())
	l.clk.SetTime(l.clk.Now().Add(l.took))
	return l.err
}
func (l *slowLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r)
}
func (l *slowLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r)
}

func TestRenewalLock(t *testing.T) {
	const validity = time.Second
	tests := []struct {
		name       string
		heldBefore bool
		create     bool
		holder     string
		took       time.Duration
		err        error
		// held: the fence after the write, at the clock then.
		held bool
		// heldAtSend: whether the fence was held when the write left.
		heldAtSend bool
		// heldFor: if held, for how long from the end of the write.
		heldFor time.Duration
		counted bool
	}{
		{name: "create naming self acquires", create: true, holder: "me", held: true, heldFor: validity, counted: true},
		{name: "update naming self renews", holder: "me", held: true, heldFor: validity, counted: true},
		{name: "a slow renewal counts from when it was sent", holder: "me", took: 400 * time.Millisecond, held: true, heldFor: validity - 400*time.Millisecond, counted: true},
		{name: "a renewal answered after the validity leaves it closed", holder: "me", took: validity, held: false, counted: true},
		{name: "failed renewal keeps the previous state", heldBefore: true, holder: "me", err: errors.New("conflict"), held: true, heldAtSend: true, heldFor: validity},
		{name: "failed acquire stays closed", create: true, holder: "me", err: errors.New("exists"), held: false},
		{name: "release revokes before sending", heldBefore: true, holder: "", held: false, heldAtSend: false},
		{name: "writing another holder revokes", heldBefore: true, holder: "other", held: false, heldAtSend: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			f := NewFence(quiet, clk, validity, nil)
			inner := &slowLock{clk: clk, fence: f, took: tt.took, err: tt.err}
			l := &renewalLock{Interface: inner, fence: f, clk: clk}
			if tt.heldBefore {
				f.Renewed(clk.Now())
			}
			rec := resourcelock.LeaderElectionRecord{HolderIdentity: tt.holder}
			write := l.Update
			if tt.create {
				write = l.Create
			}
			err := write(context.Background(), rec)
			if !errors.Is(err, tt.err) {
				t.Fatalf("write: %v, want %v", err, tt.err)
			}
			if len(inner.heldAtSend) != 1 || inner.heldAtSend[0] != tt.heldAtSend {
				t.Fatalf("fence held when the write was sent: %v, want [%v]", inner.heldAtSend, tt.heldAtSend)
			}
			if got := f.Held(); got != tt.held {
				t.Fatalf("fence held after the write: %v, want %v", got, tt.held)
			}
			if tt.held {
				end := clk.Now()
				clk.SetTime(end.Add(tt.heldFor - time.Nanosecond))
				if !f.Held() {
					t.Fatalf("fence closed before %s", tt.heldFor)
				}
				clk.SetTime(end.Add(tt.heldFor))
				if f.Held() {
					t.Fatalf("fence still open %s after the write", tt.heldFor)
				}
			}
			if got := l.held.Load() == 1; got != tt.counted {
				t.Fatalf("counted as an acquire or renewal: %v, want %v", got, tt.counted)
			}
		})
	}
}
