package nodelifecycle

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// nodeHealth is what the controller remembers about one node's liveness.
type nodeHealth struct {
	probe     time.Time // local time of the last observed sign of life
	renewTime time.Time // lease spec.renewTime last seen (compared, never against our clock)
	heartbeat time.Time // Ready condition's lastHeartbeatTime last seen
	ready     v1.ConditionStatus
}

// observe records the node's current lease and heartbeat and reports
// whether either changed since the last look: a sign of life.
func (h *nodeHealth) observe(now time.Time, node *v1.Node, lease *coordinationv1.Lease) bool {
	changed := false
	if lease != nil && lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Equal(h.renewTime) {
		h.renewTime = lease.Spec.RenewTime.Time
		changed = true
	}
	if c := readyCondition(node); c != nil && !c.LastHeartbeatTime.Time.Equal(h.heartbeat) {
		h.heartbeat = c.LastHeartbeatTime.Time
		changed = true
	}
	if changed {
		h.probe = now
	}
	return changed
}

// nodeState is a node's health as this round judges it.
type nodeState int

const (
	stateReady       nodeState = iota // alive and Ready=True
	stateNotReady                     // alive, reports Ready=False
	stateUnknown                      // alive, Ready Unknown or missing: the agent has yet to report
	stateUnreachable                  // not observed alive within the grace period
)

func readyCondition(node *v1.Node) *v1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == v1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func (c *Controller) state(now time.Time, node *v1.Node) nodeState {
	if h := c.health[node.Name]; h == nil || now.Sub(h.probe) > c.gracePeriod {
		return stateUnreachable
	}
	switch cond := readyCondition(node); {
	case cond == nil:
		return stateUnknown
	case cond.Status == v1.ConditionTrue:
		return stateReady
	case cond.Status == v1.ConditionFalse:
		return stateNotReady
	}
	return stateUnknown
}

// fullDisruption reports whether more than one node exists and none is ready.
func fullDisruption(states map[string]nodeState) bool {
	if len(states) < 2 {
		return false
	}
	for _, s := range states {
		if s == stateReady {
			return false
		}
	}
	return true
}

// monitor is one pass: observe, judge, update nodes, schedule evictions.
func (c *Controller) monitor(ctx context.Context) {
	now := c.clock.Now()
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		c.logger.Error("cannot list nodes", "err", err)
		return
	}
	stalled := c.checkStall(now)
	c.observe(now, nodes)
	suppress := stalled || now.Before(c.holdUntil) || c.silent(ctx, now, len(nodes))

	states := make(map[string]nodeState, len(nodes))
	for _, n := range nodes {
		states[n.Name] = c.state(now, n)
	}
	full := fullDisruption(states)
	if full != c.fullDisruption {
		c.fullDisruption = full
		if full {
			c.logger.Warn("no node is ready: full disruption, evictions stopped", "nodes", len(nodes))
		} else {
			c.logger.Info("a node is ready again: full disruption over, evictions resume")
		}
	}

	taints := make(map[string][]v1.Taint, len(nodes))
	for _, n := range nodes {
		taints[n.Name] = c.reconcile(ctx, now, n, states[n.Name], suppress, full)
	}
	c.trackTaints(now, taints)
	if !suppress {
		c.scheduleEvictions(now, taints)
	}
}

// checkStall detects a late pass, i.e. a starved controller, and credits
// the lost time to every node.
func (c *Controller) checkStall(now time.Time) bool {
	last := c.lastRound
	c.lastRound = now
	if last.IsZero() {
		c.lastLife = now
		return false
	}
	late := now.Sub(last) - c.monitorPeriod
	if late <= c.gracePeriod/4 {
		return false
	}
	for _, h := range c.health {
		h.probe = h.probe.Add(late)
	}
	for k, t := range c.taintSeen {
		c.taintSeen[k] = t.Add(late)
	}
	c.lastLife = c.lastLife.Add(late)
	c.holdUntil = now.Add(c.gracePeriod / 4)
	c.logger.Warn("node monitor ran late: controller starved, holding node marking and eviction", "late", late)
	return true
}

// observe updates every node's health and forgets deleted nodes.
func (c *Controller) observe(now time.Time, nodes []*v1.Node) {
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		seen[n.Name] = true
		h := c.health[n.Name]
		if h == nil {
			// A node gets a full grace period from when we first see it,
			// and a node appearing shows the watch works.
			h = &nodeHealth{probe: now}
			c.health[n.Name] = h
			c.lastLife = now
		}
		if h.observe(now, n, c.leaseFor(n.Name)) {
			c.lastLife = now
		}
	}
	for name := range c.health {
		if !seen[name] {
			delete(c.health, name)
		}
	}
}

// silent reports whether marking must wait because no node at all showed a
// sign of life for the grace period (see the package doc).
func (c *Controller) silent(ctx context.Context, now time.Time, nodes int) bool {
	quiet := now.Sub(c.lastLife)
	if nodes == 0 || quiet <= c.gracePeriod {
		c.noteSilence("")
		return false
	}
	if quiet <= 2*c.gracePeriod {
		c.noteSilence("no lease renewal observed from any node: suspecting a stalled watch, not marking nodes")
		return true
	}
	stale, err := c.leaseCacheStale(ctx)
	switch {
	case err != nil:
		c.logger.Warn("cannot verify leases with the server, not marking nodes", "err", err)
		return true
	case stale:
		c.noteSilence("server has lease renewals the cache lacks: watch stalled, not marking nodes")
		return true
	}
	c.noteSilence("server confirms no node renews its lease: marking nodes")
	return false
}

// noteSilence logs the silence verdict when it changes, not every pass.
func (c *Controller) noteSilence(verdict string) {
	if verdict != c.silence && verdict != "" {
		c.logger.Warn(verdict, "since", c.lastLife)
	}
	c.silence = verdict
}

// leaseCacheStale asks the server for the leases and reports whether any
// renewal differs from what the cache showed.
func (c *Controller) leaseCacheStale(ctx context.Context) (bool, error) {
	list, err := c.client.CoordinationV1().Leases(c.leaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list leases in %s: %w", c.leaseNamespace, err)
	}
	for _, l := range list.Items {
		h := c.health[l.Name]
		if h == nil || l.Spec.RenewTime == nil {
			continue
		}
		if !l.Spec.RenewTime.Time.Equal(h.renewTime) {
			return true, nil
		}
	}
	return false, nil
}
