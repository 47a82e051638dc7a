package leaderelect

import (
	"context"
	"sync/atomic"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// renewalLock is the elector's lock with the fence fed from it: every
// successful Create or Update naming this identity as holder renews the
// fence from the moment the request was sent (the other candidates start
// counting the lease from when they read it, which is later, so the
// fence always closes here before the lease expires there). An Update
// naming someone else, or no one (the release on a clean stop), revokes
// the fence before it is sent: once it is written another process may
// lead at once.
type renewalLock struct {
	resourcelock.Interface
	fence *Fence
	clk   clock.PassiveClock
	// held counts the successful writes naming this identity: the elector
	// loop uses it to know whether a term began.
	held atomic.Int64
	// lastTransitions is the lease's transition count this process last
	// wrote as holder: it changes only when another holder came between.
	lastTransitions atomic.Int64
}

func (l *renewalLock) transitions() int { return int(l.lastTransitions.Load()) }

func (l *renewalLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Create)
}

func (l *renewalLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(ctx, r, l.Interface.Update)
}

func (l *renewalLock) write(ctx context.Context, r resourcelock.LeaderElectionRecord, f func(context.Context, resourcelock.LeaderElectionRecord) error) error {
	if r.HolderIdentity != l.Identity() {
		l.fence.Revoke()
		return f(ctx, r)
	}
	sent := l.clk.Now()
	if err := f(ctx, r); err != nil {
		return err
	}
	l.fence.Renewed(sent)
	l.lastTransitions.Store(int64(r.LeaderTransitions))
	l.held.Add(1)
	return nil
}
