package coe

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/provider"
)

// healthState is what the health loop keeps about one cluster.
type healthState struct {
	checking bool
	// notReadySince says since when (this controller's clock) each
	// NotReady node has been seen so: auto-healing waits AutoHealAfter.
	notReadySince map[string]time.Time
}

// healthChecked: the statuses of clusters whose API is expected to answer.
func healthChecked(status string) bool {
	switch status {
	case wharfv1.StatusCreateComplete, wharfv1.StatusUpdateInProgress, wharfv1.StatusUpdateComplete, wharfv1.StatusUpdateFailed:
		return true
	}
	return false
}

// healthLoop checks every created cluster each HealthPeriod, each in its
// own goroutine so that one cluster's dead API does not delay the others.
func (c *Controller) healthLoop(ctx context.Context) {
	t := c.clock.NewTicker(c.cfg.HealthPeriod)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		for _, obj := range c.clusters.GetStore().List() {
			cl, ok := obj.(*wharfv1.Cluster)
			if !ok || cl.DeletionTimestamp != nil || !healthChecked(cl.Status.Status) || cl.Status.APIAddress == "" {
				continue
			}
			if c.beginCheck(cl.UID) {
				wg.Go(func() {
					defer c.endCheck(cl.UID)
					c.checkHealth(ctx, cl)
				})
			}
		}
	}
}

func (c *Controller) beginCheck(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.healthOf(uid)
	if hs.checking {
		return false
	}
	hs.checking = true
	return true
}

func (c *Controller) endCheck(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.healthOf(uid).checking = false
}

// healthOf returns a cluster's health state; the caller holds c.mu.
func (c *Controller) healthOf(uid types.UID) *healthState {
	hs := c.health[uid]
	if hs == nil {
		hs = &healthState{notReadySince: map[string]time.Time{}}
		c.health[uid] = hs
	}
	return hs
}

// checkHealth probes a cluster, records the result if it changed, and
// queues the cluster when a worker has been NotReady long enough to be
// replaced.
func (c *Controller) checkHealth(ctx context.Context, cl *wharfv1.Cluster) {
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.HealthPeriod, readyzTimeout))
	defer cancel()
	health, reasons, lbs := c.probe(ctx, cl)
	if health == wharfv1.HealthUnknown {
		lbs = cl.Status.LoadBalancers // not seen: as last seen
	}
	if ctx.Err() != nil && health == wharfv1.HealthUnknown {
		return // shutting down, or the probe ran out of time: no verdict
	}
	if health != wharfv1.HealthUnknown && c.noteReadiness(cl, reasons) && clusterLabels(cl)[wharfv1.LabelAutoHealing] == "true" {
		c.queue.Add(cl.Namespace + "/" + cl.Name)
	}
	if cl.Status.HealthStatus == health && maps.Equal(cl.Status.HealthStatusReason, reasons) &&
		equality.Semantic.DeepEqual(cl.Status.LoadBalancers, lbs) {
		return
	}
	if _, err := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		st.HealthStatus, st.HealthStatusReason, st.LoadBalancers = health, reasons, lbs
	}); err != nil {
		c.log.Debug("health status not written", "cluster", cl.Namespace+"/"+cl.Name, "err", err)
		return
	}
	if cl.Status.HealthStatus != health {
		c.log.Info("cluster health changed", "cluster", cl.Namespace+"/"+cl.Name, "health", health, "reasons", reasons)
	}
}

// probe asks the cluster's API for /readyz, its nodes and its
// LoadBalancer services. Nodes the cluster's groups have but the API does
// not are NotReady ("not registered"): a host that never joined is as
// unhealthy as one that left.
func (c *Controller) probe(ctx context.Context, cl *wharfv1.Cluster) (string, map[string]string, []wharfv1.LoadBalancer) {
	unknown := func(why string) (string, map[string]string, []wharfv1.LoadBalancer) {
		return wharfv1.HealthUnknown, map[string]string{"api": why}, nil
	}
	cr, err := c.ensureCredentials(ctx, cl)
	if err != nil {
		return unknown(err.Error())
	}
	var masters map[string]string
	healthy := true
	if isHA(cl) {
		quorum, reasons, err := c.probeMasters(ctx, cl, cr)
		if err != nil {
			return unknown(err.Error())
		}
		if !quorum {
			reasons["api"] = "read-only or down: " + reasons["etcd"]
			return wharfv1.HealthUnhealthy, reasons, cl.Status.LoadBalancers
		}
		masters, healthy = reasons, mastersHealthy(reasons)
	}
	kube, err := c.clusterAPI(cl, cr, cl.Status.APIAddress)
	if err != nil {
		return unknown(err.Error())
	}
	if err := readyz(ctx, kube, readyzTimeout); err != nil {
		return unknown(err.Error())
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return unknown("list nodes: " + err.Error())
	}
	byName := map[string]*corev1.Node{}
	for i := range nodes.Items {
		byName[nodes.Items[i].Name] = &nodes.Items[i]
	}
	reasons := map[string]string{"api": "ok"}
	for _, name := range append(c.groupNodes(cl), slices.Collect(maps.Keys(byName))...) {
		reasons[name] = nodeReason(byName[name])
	}
	health := wharfv1.HealthHealthy
	for name, r := range reasons {
		if name != "api" && r != readyReason {
			health = wharfv1.HealthUnhealthy
		}
	}
	maps.Copy(reasons, masters)
	if !healthy {
		health = wharfv1.HealthUnhealthy
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return unknown("list services: " + err.Error())
	}
	return health, reasons, loadBalancers(svcs.Items)
}

// groupNodes are the nodes the cluster's worker groups say they have.
func (c *Controller) groupNodes(cl *wharfv1.Cluster) []string {
	objs, err := c.groups.GetIndexer().ByIndex(wharf.ClusterIndex, cl.Namespace+"/"+cl.Name)
	if err != nil {
		return nil
	}
	var out []string
	for _, obj := range objs {
		g, ok := obj.(*wharfv1.NodeGroup)
		if ok && g.Spec.Role != wharfv1.RoleMaster {
			out = append(out, g.Status.Nodes...)
		}
	}
	return out
}

// noteReadiness updates the NotReady timers from a probe and reports
// whether a node has been NotReady for AutoHealAfter.
func (c *Controller) noteReadiness(cl *wharfv1.Cluster, reasons map[string]string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.healthOf(cl.UID)
	now := c.clock.Now()
	due := false
	for name := range hs.notReadySince {
		if r, ok := reasons[name]; !ok || r == readyReason {
			delete(hs.notReadySince, name)
		}
	}
	for name, r := range reasons {
		if name == "api" || r == readyReason || !isNodeReason(cl, name) {
			continue
		}
		since, ok := hs.notReadySince[name]
		if !ok {
			hs.notReadySince[name] = now
		} else if now.Sub(since) >= c.cfg.AutoHealAfter {
			due = true
		}
	}
	return due
}

// dueForHealing lists the workers to replace now: NotReady for at least
// AutoHealAfter, in a cluster with auto_healing_enabled=true.
func (c *Controller) dueForHealing(cl *wharfv1.Cluster, e *env, plans []*plan) []string {
	if !e.autoHealing() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.healthOf(cl.UID)
	now := c.clock.Now()
	var out []string
	workers := 0
	for _, p := range plans {
		if p.role() != provider.RoleWorker || p.invalid != "" {
			continue
		}
		for _, h := range p.hosts {
			workers++
			since, ok := hs.notReadySince[h.Name]
			if ok && now.Sub(since) >= c.cfg.AutoHealAfter && !slices.Contains(p.remove, h.Name) {
				out = append(out, h.Name)
			}
		}
	}
	if workers > 1 && len(out) == workers {
		// Every worker at once: a shared cause (the network, the control
		// plane) is likelier than dead hosts, and new hosts would not help.
		c.log.Warn("auto-healing held: every worker is NotReady", "cluster", cl.Namespace+"/"+cl.Name, "workers", workers)
		return nil
	}
	return out
}

// healed restarts the NotReady timers of replaced nodes: a replacement
// that does not come up is replaced again only after AutoHealAfter.
func (c *Controller) healed(cl *wharfv1.Cluster, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.healthOf(cl.UID)
	for _, n := range names {
		delete(hs.notReadySince, n)
	}
}
