// Package scheduler assigns pending pods to nodes, as kube-scheduler does for
// the default profile: filters (readiness, cordon, taints, node affinity,
// host ports, resources) and weighted scores (least allocated, replica
// spread, preferred affinity, PreferNoSchedule taints) over a sample of the
// nodes, then an asynchronous bind through the API.
//
// The algorithm (core) works on an in-memory cache and knows nothing of the
// API, so it can be tested and benchmarked alone; Scheduler feeds it from
// informers and writes bindings, conditions and events back.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	kcache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Scheduler binds pods with spec.schedulerName "default-scheduler" (or empty)
// and no spec.nodeName.
type Scheduler struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	cfg      config

	cache   *cache
	core    *core
	queue   *queue
	volumes volumeListers

	synced []kcache.InformerSynced
	slots  chan struct{} // bounds API calls in flight
	calls  sync.WaitGroup

	scheduled, unschedulable, bindErrors atomic.Int64
}

// New returns a scheduler that binds pods with spec.schedulerName
// "default-scheduler" (or empty) and no spec.nodeName. It registers its
// informer handlers on factory; the caller starts the factory afterwards.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, opts ...Option) *Scheduler {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	seed := cfg.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	c := newCache()
	s := &Scheduler{
		logger:   logger,
		client:   client,
		recorder: recorder,
		cfg:      cfg,
		cache:    c,
		core:     newCore(c, cfg.percentage, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))),
		queue:    newQueue(cfg.now, cfg.backoffInitial, cfg.backoffMax, cfg.unschedulableRetry),
		slots:    make(chan struct{}, cfg.bindConcurrency),
	}
	s.register(factory)
	return s
}

// Run schedules until ctx is done, then waits for its API calls to end.
func (s *Scheduler) Run(ctx context.Context) {
	s.logger.Info("scheduler starting", "bindConcurrency", s.cfg.bindConcurrency,
		"percentageOfNodesToScore", s.cfg.percentage)
	if !s.waitForSync(ctx) {
		return
	}
	var bg sync.WaitGroup
	bg.Go(func() { s.housekeeping(ctx) })
	stop := context.AfterFunc(ctx, s.queue.close)
	defer stop()
	for {
		e, pod, ok := s.queue.pop()
		if !ok {
			break
		}
		s.scheduleOne(ctx, e, pod)
	}
	bg.Wait()
	s.calls.Wait()
	s.logger.Info("scheduler stopped")
}

// waitForSync polls instead of using cache.WaitForCacheSync, which logs
// through klog rather than the injected logger.
func (s *Scheduler) waitForSync(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		synced := true
		for _, f := range s.synced {
			synced = synced && f()
		}
		if synced {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// scheduleOne runs one scheduling cycle. Binding happens in the background so
// the next cycle starts at once.
func (s *Scheduler) scheduleOne(ctx context.Context, e *entry, pod *corev1.Pod) {
	if !responsibleFor(pod) || pod.Spec.NodeName != "" {
		s.queue.done(e)
		return
	}
	info := newPodInfo(pod)
	vols, unschedulable, err := s.volumes.podVolumesOf(pod)
	if err != nil || unschedulable != "" {
		if err != nil {
			unschedulable = err.Error()
		}
		s.unschedulable.Add(1)
		s.handleUnschedulable(ctx, e, pod, (&fitError{numNodes: s.cache.numNodes(), preFilter: unschedulable}).Error())
		return
	}
	info.volumes = vols
	res, err := s.core.schedule(info)
	var fe *fitError
	switch {
	case err == nil:
		s.scheduled.Add(1)
		if s.logger.Enabled(ctx, slog.LevelDebug) {
			s.logger.Debug("pod scheduled", "pod", e.key, "node", res.node,
				"evaluated", res.evaluated, "feasible", res.feasible)
		}
		s.bindAsync(ctx, e, info, res.node)
	case errors.As(err, &fe):
		s.unschedulable.Add(1)
		s.handleUnschedulable(ctx, e, pod, fe.Error())
	default: // already placed: a stale pending copy of a pod we bound
		s.queue.done(e)
	}
}

// responsibleFor reports whether the pod is a pending pod of ours. Gated
// pods (spec.schedulingGates) wait until their gates are removed.
func responsibleFor(pod *corev1.Pod) bool {
	return (pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == schedulerName) &&
		pod.DeletionTimestamp == nil &&
		len(pod.Spec.SchedulingGates) == 0 &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// housekeeping retries waiting pods, expires stale assumptions and logs a
// summary now and then.
func (s *Scheduler) housekeeping(ctx context.Context) {
	every := min(time.Second, s.cfg.backoffInitial, s.cfg.unschedulableRetry)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	lastExpire, lastSummary := s.cfg.now(), s.cfg.now()
	var lastScheduled, lastUnsched, lastErrors int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.queue.flush()
		now := s.cfg.now()
		if now.Sub(lastExpire) >= time.Second {
			lastExpire = now
			if n := s.cache.expire(now); n > 0 {
				s.logger.Info("assumed pods expired without a confirmed binding", "count", n)
				s.queue.moveAll()
			}
		}
		if now.Sub(lastSummary) < s.cfg.summaryInterval {
			continue
		}
		sc, un, be := s.scheduled.Load(), s.unschedulable.Load(), s.bindErrors.Load()
		if sc == lastScheduled && un == lastUnsched && be == lastErrors {
			continue
		}
		active, backoff, unsched := s.queue.lengths()
		s.logger.Info("scheduling summary",
			"scheduled", sc-lastScheduled, "unschedulableAttempts", un-lastUnsched,
			"bindErrors", be-lastErrors, "interval", now.Sub(lastSummary).Round(time.Second),
			"active", active, "backoff", backoff, "unschedulable", unsched,
			"nodes", s.cache.numNodes())
		lastSummary, lastScheduled, lastUnsched, lastErrors = now, sc, un, be
	}
}
