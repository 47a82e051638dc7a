package leaderelect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Defaults of Config's timings. They are short because the goal is
// controllers acting again within 3 s of a power cut of their leader
// (kube-controller-manager's 15 s / 10 s / 2 s take up to ~15 s): a
// survivor acquires at most LeaseDuration + RetryPeriod after the last
// renewal it saw. A renewal is one small write over loopback every
// RetryPeriod, so the leader's cost is four writes a second.
const (
	DefaultLeaseDuration = 2 * time.Second
	DefaultRenewDeadline = 1500 * time.Millisecond
	DefaultRetryPeriod   = 250 * time.Millisecond
)

// Config configures an Elector.
type Config struct {
	Logger *slog.Logger
	// Client reaches the API for the lease itself: not a fenced client.
	Client kubernetes.Interface
	// Namespace and Name are the Lease's.
	Namespace, Name string
	// Identity names this process in the lease; it must be unique among
	// the candidates and stable across restarts, so that a restarted
	// process takes its own unexpired lease back at once.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's; zero:
	// the defaults above. The fence holds for RenewDeadline after each
	// renewal: the margin to LeaseDuration covers a write already in
	// flight when the fence closes.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Metrics, if not nil, gets wharf_leader_fenced_writes_total and
	// wharf_leader_is_leader.
	Metrics prometheus.Registerer
	// Clock is for tests; nil: the real clock.
	Clock clock.PassiveClock
}

// Elector runs work while this process holds a lease.
type Elector struct {
	cfg    Config
	log    *slog.Logger
	fence  *Fence
	lock   *renewalLock
	leader prometheus.Gauge

	mu       sync.Mutex
	holder   string        // the last holder observed
	observed chan struct{} // closed once a holder (or none) was first observed
	work     *work         // the running work, if any
	leading  bool          // a term holds the lease
	endTerm  context.CancelFunc
}

// New checks cfg and returns an elector; Run starts it.
func New(cfg Config) (*Elector, error) {
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LeaseDuration < time.Second {
		// The Lease stores whole seconds: less would be written as 0.
		return nil, fmt.Errorf("leader election: lease duration %s: want at least 1s", cfg.LeaseDuration)
	}
	e := &Elector{cfg: cfg, log: cfg.Logger, observed: make(chan struct{})}
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "wharf_leader_fenced_writes_total",
		Help: "Controller writes refused because this server did not hold the controllers' lease by its own clock.",
	})
	e.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "wharf_leader_is_leader",
		Help: "1 while this server runs the scheduler and controllers (holds their lease), else 0.",
	})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(refused); err != nil {
			return nil, fmt.Errorf("leader election metrics: %w", err)
		}
		if err := cfg.Metrics.Register(e.leader); err != nil {
			return nil, fmt.Errorf("leader election metrics: %w", err)
		}
	}
	e.fence = NewFence(cfg.Logger, cfg.Clock, cfg.RenewDeadline, refused)
	e.lock = &renewalLock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
			Client:     cfg.Client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		},
		fence: e.fence,
		clk:   cfg.Clock,
	}
	// Check the timings now rather than at the first term.
	if _, err := e.newElector(context.Background(), func(context.Context) {}, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// Fence is what the work's clients must be wrapped with (rest.Config.Wrap).
func (e *Elector) Fence() *Fence { return e.fence }

// Identity is this process's name in the lease.
func (e *Elector) Identity() string { return e.cfg.Identity }

// Observed is closed once the elector has read the lease for the first
// time; Holder then says who held it (this process, if it acquired it).
func (e *Elector) Observed() <-chan struct{} { return e.observed }

// Holder is the lease's holder as last observed ("" before or when none).
func (e *Elector) Holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holder
}

func (e *Elector) newElector(ctx context.Context, started func(context.Context), stopped func()) (*leaderelection.LeaderElector, error) {
	if stopped == nil {
		stopped = func() {}
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          e.lock,
		LeaseDuration: e.cfg.LeaseDuration,
		RenewDeadline: e.cfg.RenewDeadline,
		RetryPeriod:   e.cfg.RetryPeriod,
		// Released by Run itself (release): client-go's release also follows
		// a lost lease, which would make a lease this process gets straight
		// back look like someone else's.
		ReleaseOnCancel: false,
		Name:            e.cfg.Namespace + "/" + e.cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: started,
			OnStoppedLeading: stopped,
			OnNewLeader:      e.observe,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election %s/%s: %w", e.cfg.Namespace, e.cfg.Name, err)
	}
	return le, nil
}

func (e *Elector) observe(holder string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if holder != e.holder {
		e.log.Info("controllers' lease holder", "holder", holder, "self", holder == e.cfg.Identity)
	}
	e.holder = holder
	select {
	case <-e.observed:
	default:
		close(e.observed)
	}
	if holder != "" && holder != e.cfg.Identity && e.work != nil && !e.leading {
		w := e.work
		go e.stopWork(w) // another leads: this one's work is fenced and idle
	}
}

// Run is a candidate until ctx ends. When it acquires the lease it starts
// lead with a context that ends when the work must stop; lead must return
// only once all its work has stopped. Run never returns before ctx ends,
// and on return the work has stopped and the lease has been released.
//
// Losing the lease closes the fence at once (the work can no longer
// write), and the work is stopped as soon as another process is seen
// holding the lease, or when this one has not got it back within a lease
// duration. If this process gets it back first, with no other holder in
// between (the lease's transition count unchanged), the work goes on:
// a server whose renewals were slow for a moment (an overloaded API, an
// etcd election) does not rebuild every cache from scratch, which would
// load it further. An error from lead releases the lease; it is sought
// again after a retry period.
func (e *Elector) Run(ctx context.Context, lead func(context.Context) error) {
	for ctx.Err() == nil {
		if failed := e.term(ctx, lead); failed {
			select {
			case <-ctx.Done():
			case <-time.After(e.cfg.RetryPeriod):
			}
		}
	}
	// Release first: the fence closes with it, so the work cannot write
	// while it winds down, and another process leads at once.
	e.release()
	e.stopWork(nil)
}

// release empties the lease if this process holds it, as client-go's
// release does: another candidate may then take it without waiting.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	rec, _, err := e.lock.Get(ctx)
	if err != nil || rec.HolderIdentity != e.cfg.Identity {
		return
	}
	now := metav1.NewTime(e.cfg.Clock.Now())
	err = e.lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	})
	if err != nil {
		e.log.Warn("could not release the controllers' lease: another server takes it when it expires", "err", err)
	}
}

// work is lead running.
type work struct {
	cancel      context.CancelFunc
	done        chan struct{}
	failed      atomic.Bool // lead returned an error by itself
	transitions int         // the lease's transition count when it started
}

func (w *work) stop() {
	w.cancel()
	<-w.done
}

// stopWork stops the running work if it is w (nil: whatever runs).
func (e *Elector) stopWork(w *work) {
	e.mu.Lock()
	cur := e.work
	if cur == nil || (w != nil && cur != w) {
		e.mu.Unlock()
		return
	}
	e.work = nil
	e.mu.Unlock()
	cur.stop()
	e.log.Info("the scheduler and controllers stopped")
}

// started is the elector's OnStartedLeading: go on with the running work
// if nobody else held the lease since it started, else start it afresh.
func (e *Elector) started(ctx, lctx context.Context, lead func(context.Context) error, endTerm context.CancelFunc) {
	e.mu.Lock()
	if lctx.Err() != nil { // the term ended before this ran
		e.mu.Unlock()
		return
	}
	e.leading, e.endTerm = true, endTerm
	e.leader.Set(1)
	old := e.work
	if old != nil && old.transitions == e.lock.transitions() && !old.failed.Load() {
		e.mu.Unlock()
		e.log.Info("got the controllers' lease back: the scheduler and controllers go on")
		return
	}
	e.mu.Unlock()
	if old != nil {
		e.log.Info("another server held the controllers' lease meanwhile: restarting the scheduler and controllers")
		e.stopWork(old)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if lctx.Err() != nil || e.work != nil {
		return
	}
	e.log.Info("acquired the controllers' lease: starting the scheduler and controllers", "lease", e.cfg.Namespace+"/"+e.cfg.Name)
	wctx, cancel := context.WithCancel(ctx)
	w := &work{cancel: cancel, done: make(chan struct{}), transitions: e.lock.transitions()}
	e.work = w
	go func() {
		defer close(w.done)
		if err := lead(wctx); err != nil && wctx.Err() == nil {
			w.failed.Store(true)
			e.log.Error("the controllers failed: releasing their lease", "err", err)
			e.mu.Lock()
			end := e.endTerm
			e.mu.Unlock()
			end() // renewals stop and the lease is released
		}
	}()
}

// term is one candidacy: it returns once the lease is lost or released;
// failed reports that the work failed.
func (e *Elector) term(ctx context.Context, lead func(context.Context) error) (failed bool) {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	le, err := e.newElector(tctx, func(lctx context.Context) { e.started(ctx, lctx, lead, cancel) }, e.fence.Revoke)
	if err != nil { // checked by New
		e.log.Error("leader election", "err", err)
		return true
	}
	before := e.lock.held.Load()
	le.Run(tctx)
	e.fence.Revoke()
	e.mu.Lock()
	w := e.work
	e.leading = false
	e.leader.Set(0)
	e.mu.Unlock()
	if e.lock.held.Load() == before || ctx.Err() != nil {
		return false // never acquired, or stopping: Run stops the work
	}
	if w != nil && w.failed.Load() {
		e.release()
		e.stopWork(w)
		return true
	}
	if w != nil {
		e.log.Warn("lost the controllers' lease: their writes are refused; they stop once another server holds it, or in a lease duration",
			"lease", e.cfg.Namespace+"/"+e.cfg.Name)
		time.AfterFunc(e.cfg.LeaseDuration, func() {
			e.mu.Lock()
			idle := !e.leading
			e.mu.Unlock()
			if idle {
				e.stopWork(w)
			}
		})
	}
	return false
}
