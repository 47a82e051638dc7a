// Package nodelifecycle watches node health and moves pods off failed nodes,
// like Kubernetes' node lifecycle controller and its NoExecute taint manager.
//
// Each agent renews a Lease named after its node in kube-node-lease about
// once a second. The controller never compares those remote timestamps with
// its own clock (hosts' clocks drift); it records the local time at which it
// *observed* a renewal (or a new Ready heartbeat). A node unobserved for
// longer than the grace period gets all its conditions set to Unknown and the
// node.kubernetes.io/unreachable taints (NoSchedule, NoExecute); a node whose
// agent reports Ready=False gets node.kubernetes.io/not-ready. Both go away
// when the node is observed alive again and reports Ready=True. Pods on a
// node with a NoExecute taint they do not tolerate are deleted; a toleration
// with tolerationSeconds delays that until the taint is that old. The API
// server gives every pod such tolerations for not-ready and unreachable with
// DefaultTolerationSeconds, as Kubernetes' DefaultTolerationSeconds admission
// does.
//
// # Defaults
//
// The goal is that a dead host's pods run elsewhere within about 10 s, while
// a CPU-saturated 2-core machine running the control plane and several
// agents does not flap. Worst case from a host's death: up to 1 s since its
// last renewal, + GracePeriod 5 s, + one MonitorPeriod 0.5 s to notice,
// + DefaultTolerationSeconds 3 s, + 0.5 s until the next eviction pass,
// + well under 1 s for the ReplicaSet, scheduler and another agent to start
// the replacement (a local pod starts in 0.2–0.4 s): about 10 s, 9 s typical.
//
// Against flapping: 5 s is five missed 1 s renewals — the same ratio of
// grace to renew interval as Kubernetes (40 s / 10 s) plus one, because at a
// 1 s interval scheduling and fsync latency under load are a larger share of
// the interval. Marking a node unreachable is cheap and reversible (it only
// blocks scheduling); eviction, which is not, needs 8 s of continuous
// silence. Starvation of the controller itself is caught separately (below),
// so the grace period only has to absorb delays of one agent, not of the
// whole machine. Kubernetes uses 40–50 s grace and 300 s tolerations because
// its nodes are remote and a network partition is common; here a host is a
// process or VM next to the control plane.
//
// # False alarms
//
// A starved controller sees every lease as old. So: if a monitor pass runs
// later than GracePeriod/4 after the previous one, the controller was
// stalled; it credits the stall to every node (nobody is blamed for time the
// controller was not looking) and holds marking and eviction for a further
// GracePeriod/4 while its informers catch up. If no node at all has shown a
// sign of life for GracePeriod while nodes exist, the watch or the control
// plane probably stalled, not every node; the controller marks nothing. If
// that silence outlasts 2×GracePeriod it asks the server directly (a live
// LIST of leases): if the server has renewals the cache lacks it keeps
// waiting, otherwise the nodes really are silent (a one-node cluster whose
// host died) and it proceeds. Finally, like Kubernetes' full-disruption
// mode, when more than one node exists and none is ready, NoExecute taints
// are withheld (and removed) so nothing is evicted: there is nowhere to go,
// and the likely cause is shared.
package nodelifecycle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

const (
	// DefaultMonitorPeriod is how often node health is evaluated.
	DefaultMonitorPeriod = 500 * time.Millisecond
	// DefaultGracePeriod is how long a node may go unobserved before it is
	// marked unreachable.
	DefaultGracePeriod = 5 * time.Second
	// DefaultTolerationSeconds is the tolerationSeconds the API server gives
	// every pod for the not-ready and unreachable NoExecute taints.
	DefaultTolerationSeconds int64 = 3
)

const podNodeIndex = "wharf.dev/nodelifecycle-node"

// Controller is the node lifecycle controller.
type Controller struct {
	logger         *slog.Logger
	client         kubernetes.Interface
	recorder       record.EventRecorder
	clock          clock.WithTicker
	monitorPeriod  time.Duration
	gracePeriod    time.Duration
	leaseNamespace string

	nodes      corelisters.NodeLister
	leases     coordlisters.LeaseLister
	pods       corelisters.PodLister
	podIndexer cache.Indexer
	indexed    bool
	synced     []cache.InformerSynced
	evictions  workqueue.TypedRateLimitingInterface[string]

	// Monitor state, touched only by the monitor loop.
	health         map[string]*nodeHealth
	lastRound      time.Time
	lastLife       time.Time // last observed sign of life of any node
	holdUntil      time.Time
	taintSeen      map[taintKey]time.Time
	silence        string // last silence verdict logged
	fullDisruption bool
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock injects a clock (tests use a fake one).
func WithClock(clk clock.WithTicker) Option { return func(c *Controller) { c.clock = clk } }

// WithMonitorPeriod sets how often node health is evaluated.
func WithMonitorPeriod(d time.Duration) Option { return func(c *Controller) { c.monitorPeriod = d } }

// WithGracePeriod sets how long a node may go unobserved before it is marked unreachable.
func WithGracePeriod(d time.Duration) Option { return func(c *Controller) { c.gracePeriod = d } }

// WithLeaseNamespace sets the namespace of node leases (default kube-node-lease).
func WithLeaseNamespace(ns string) Option { return func(c *Controller) { c.leaseNamespace = ns } }

// New builds the controller on factory's node, lease and pod informers.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Option) *Controller {
	c := &Controller{
		logger:         logger.With("controller", "nodelifecycle"),
		client:         client,
		recorder:       recorder,
		clock:          clock.RealClock{},
		monitorPeriod:  DefaultMonitorPeriod,
		gracePeriod:    DefaultGracePeriod,
		leaseNamespace: v1.NamespaceNodeLease,
		health:         map[string]*nodeHealth{},
		taintSeen:      map[taintKey]time.Time{},
	}
	for _, o := range opts {
		o(c)
	}
	c.evictions = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodelifecycle-eviction"})

	nodeInf := factory.Core().V1().Nodes()
	leaseInf := factory.Coordination().V1().Leases()
	podInf := factory.Core().V1().Pods()
	c.nodes, c.leases, c.pods = nodeInf.Lister(), leaseInf.Lister(), podInf.Lister()
	c.podIndexer = podInf.Informer().GetIndexer()
	// The index fails if the informer already runs; listing all pods is the fallback.
	err := podInf.Informer().AddIndexers(cache.Indexers{podNodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	c.indexed = err == nil
	c.synced = []cache.InformerSynced{nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c
}

// Run monitors nodes every monitor period and evicts pods with workers
// goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer c.evictions.ShutDown()
	c.logger.Info("starting", "monitorPeriod", c.monitorPeriod, "gracePeriod", c.gracePeriod)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		controllerutil.RunWorkers(ctx, c.logger, c.evictions, workers, c.evict, evictionLog...)
	})
	t := c.clock.NewTicker(c.monitorPeriod)
	for {
		c.monitor(ctx)
		select {
		case <-ctx.Done():
			t.Stop()
			wg.Wait()
			return
		case <-t.C():
		}
	}
}

// leaseFor returns the node's lease from the cache, or nil.
func (c *Controller) leaseFor(node string) *coordinationv1.Lease {
	l, err := c.leases.Leases(c.leaseNamespace).Get(node)
	if err != nil {
		return nil
	}
	return l
}
