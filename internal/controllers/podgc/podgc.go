// Package podgc force-deletes pods that no agent will ever finish: pods
// bound to a node that no longer exists (whether running or already
// terminating), and terminating pods that were never scheduled. Such pods
// would otherwise block their owners (a ReplicaSet counts them), their
// namespace's deletion and any foreground deletion forever.
//
// A node missing from the informer cache is not trusted at once: the cache
// of nodes may lag behind the cache of pods (a node that just registered),
// so a node must stay missing for a quarantine period and a live GET must
// confirm it is gone. Kubernetes quarantines for 40 s; a few seconds suffice
// here because the live GET is the real safeguard.
package podgc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

const (
	// DefaultPeriod is how often pods are checked.
	DefaultPeriod = 2 * time.Second
	// DefaultQuarantine is how long a node must stay missing from the cache
	// before its pods are deleted.
	DefaultQuarantine = 5 * time.Second
)

// Controller is the pod garbage collector.
type Controller struct {
	logger     *slog.Logger
	client     kubernetes.Interface
	clock      clock.WithTicker
	period     time.Duration
	quarantine time.Duration

	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	synced []cache.InformerSynced

	// missingSince is when each node was first found missing from the cache.
	// Only the gc loop touches it.
	missingSince map[string]time.Time
}

// Option configures a Controller.
type Option func(*Controller)

// WithClock injects a clock (tests use a fake one).
func WithClock(clk clock.WithTicker) Option { return func(c *Controller) { c.clock = clk } }

// WithPeriod sets how often pods are checked.
func WithPeriod(d time.Duration) Option { return func(c *Controller) { c.period = d } }

// WithQuarantine sets how long a node must be missing before its pods go.
func WithQuarantine(d time.Duration) Option { return func(c *Controller) { c.quarantine = d } }

// New builds the controller on factory's pod and node informers.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Option) *Controller {
	c := &Controller{
		logger:       logger.With("controller", "podgc"),
		client:       client,
		clock:        clock.RealClock{},
		period:       DefaultPeriod,
		quarantine:   DefaultQuarantine,
		missingSince: map[string]time.Time{},
	}
	for _, o := range opts {
		o(c)
	}
	podInf, nodeInf := factory.Core().V1().Pods(), factory.Core().V1().Nodes()
	c.pods, c.nodes = podInf.Lister(), nodeInf.Lister()
	c.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced}
	return c
}

// Run checks pods every period until ctx is done; workers bounds the
// deletions made in parallel.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.logger.Info("starting", "period", c.period, "quarantine", c.quarantine)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	t := c.clock.NewTicker(c.period)
	defer t.Stop()
	for {
		c.gc(ctx, workers)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// gc runs one pass: it finds pods to force-delete and deletes them.
func (c *Controller) gc(ctx context.Context, workers int) {
	now := c.clock.Now()
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		c.logger.Error("cannot list pods", "err", err)
		return
	}
	var doomed []*v1.Pod
	byMissingNode := map[string][]*v1.Pod{}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			if p.DeletionTimestamp != nil {
				doomed = append(doomed, p) // no agent will ever confirm it
			}
			continue
		}
		if _, err := c.nodes.Get(p.Spec.NodeName); err == nil {
			continue
		}
		byMissingNode[p.Spec.NodeName] = append(byMissingNode[p.Spec.NodeName], p)
	}
	for name := range c.missingSince {
		if _, ok := byMissingNode[name]; !ok {
			delete(c.missingSince, name)
		}
	}
	for name, ps := range byMissingNode {
		since, ok := c.missingSince[name]
		if !ok {
			since = now
			c.missingSince[name] = now
		}
		if now.Sub(since) < c.quarantine {
			continue
		}
		gone, err := c.nodeGone(ctx, name)
		if err != nil {
			c.logger.Warn("cannot check node", "node", name, "err", err)
			continue
		}
		if !gone {
			delete(c.missingSince, name) // the cache was behind
			continue
		}
		doomed = append(doomed, ps...)
	}
	workqueue.ParallelizeUntil(ctx, max(workers, 1), len(doomed), func(i int) {
		if err := c.forceDelete(ctx, doomed[i]); err != nil {
			c.logger.Warn("cannot delete orphaned pod", "pod", doomed[i].Namespace+"/"+doomed[i].Name, "err", err)
		}
	})
}

func (c *Controller) nodeGone(ctx context.Context, name string) (bool, error) {
	_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get node %q: %w", name, err)
	}
	return false, nil
}

func (c *Controller) forceDelete(ctx context.Context, p *v1.Pod) error {
	uid := p.UID
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("force-delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.logger.Info("force-deleted pod", "pod", p.Namespace+"/"+p.Name, "node", p.Spec.NodeName)
	return nil
}
