package leaderelect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
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
		Lock:            e.lock,
		LeaseDuration:   e.cfg.LeaseDuration,
		RenewDeadline:   e.cfg.RenewDeadline,
		RetryPeriod:     e.cfg.RetryPeriod,
		ReleaseOnCancel: true,
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
}

// Run is a candidate until ctx ends. Each time it acquires the lease it
// calls lead with a context that ends when the lease is lost (or ctx
// ends); lead must return only once all its work has stopped. An error
// from lead ends the term: the lease is released and, after a retry
// period, sought again. Run never returns before ctx ends, and on return
// the lease has been released if it was held.
func (e *Elector) Run(ctx context.Context, lead func(context.Context) error) {
	for ctx.Err() == nil {
		failed := e.term(ctx, lead)
		if failed {
			select {
			case <-ctx.Done():
			case <-time.After(e.cfg.RetryPeriod):
			}
		}
	}
}

// term is one candidacy: it returns once the lease is lost or released
// and lead has returned; failed reports an error from lead.
func (e *Elector) term(ctx context.Context, lead func(context.Context) error) (failed bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	finished := make(chan struct{})
	var err error
	started := func(lctx context.Context) {
		defer close(finished)
		e.leader.Set(1)
		e.log.Info("acquired the controllers' lease: starting the scheduler and controllers", "lease", e.cfg.Namespace+"/"+e.cfg.Name)
		if err = lead(lctx); err != nil && lctx.Err() == nil {
			e.log.Error("the controllers failed: releasing their lease", "err", err)
			cancel() // renewals stop and the lease is released
		} else {
			err = nil
		}
	}
	stopped := func() { e.fence.Revoke() }
	le, lerr := e.newElector(ctx, started, stopped)
	if lerr != nil { // checked by New
		e.log.Error("leader election", "err", lerr)
		return true
	}
	before := e.lock.held.Load()
	le.Run(ctx)
	e.fence.Revoke()
	if e.lock.held.Load() == before {
		return false // never acquired: ctx ended
	}
	// Acquired: the elector started lead in a goroutine; the lease has been
	// lost or released and lead's context is done. Wait until its work stops
	// before becoming a candidate again.
	<-finished
	e.leader.Set(0)
	if ctx.Err() == nil || err != nil {
		e.log.Warn("lost the controllers' lease: the scheduler and controllers stopped", "lease", e.cfg.Namespace+"/"+e.cfg.Name)
	}
	return err != nil
}
