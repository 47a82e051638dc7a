package coe

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"k8s.io/client-go/kubernetes"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

// update is one round of changes to a created cluster's hosts.
type update struct {
	work    []*plan           // groups whose hosts change
	orphans []provider.Host   // hosts of deleted groups
	heal    []string          // dead workers to replace
	faults  map[string]string // per host, on failure
	err     error
}

func (u *update) empty() bool { return len(u.work)+len(u.orphans)+len(u.heal) == 0 }

// reconcile keeps a created cluster as its node groups say: it resizes
// groups, replaces dead workers (auto-healing), removes the hosts of
// deleted groups and puts each group's labels and taints on its nodes.
// Masters are never made or removed here: a new master would be a new,
// empty cluster.
func (c *Controller) reconcile(ctx context.Context, cl *wharfv1.Cluster, e *env) error {
	cr, err := c.ensureCredentials(ctx, cl)
	if err != nil {
		return fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	pull, err := c.ensurePullToken(ctx, cl)
	if err != nil {
		return fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	cl, groups, err := c.ensureGroups(ctx, cl)
	if err != nil {
		return err
	}
	gen := cl.Generation // what this round acts on
	hosts, err := e.prov.ListHosts(ctx, e.ref)
	if err != nil {
		return fmt.Errorf("cluster %s/%s: list hosts: %w", cl.Namespace, cl.Name, err)
	}
	plans, orphans := planGroups(cl.Name, groups, hosts)
	var kube kubernetes.Interface
	if cl.Status.APIAddress != "" {
		if kube, err = c.clusterAPI(cl, cr, cl.Status.APIAddress); err != nil {
			return err
		}
	}
	// A cluster made before it could have a block (or when the pool was
	// full) gets one now; its server takes it from the ConfigMap.
	if cl, err = c.ensureLoadBalancerBlock(ctx, cl, e); err != nil {
		return fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
	}
	if kube != nil {
		c.ensurePoolConfigMap(ctx, kube, cl)
	}
	u := &update{heal: c.dueForHealing(cl, e, plans)}
	for _, h := range orphans {
		if h.Role == provider.RoleMaster {
			// Only a bug could orphan a master; removing it would lose the cluster.
			c.log.Error("master host of no node group left alone", "cluster", cl.Namespace+"/"+cl.Name, "host", h.Name)
			continue
		}
		u.orphans = append(u.orphans, h)
	}
	for _, p := range plans {
		if p.role() == provider.RoleMaster || groupBlocked(p.group) {
			p.create, p.remove = nil, nil
		}
		if len(p.create)+len(p.remove) > 0 {
			u.work = append(u.work, p)
		}
	}
	resuming := cl.Status.Status == wharfv1.StatusUpdateInProgress
	if u.empty() && !resuming {
		return c.settle(ctx, cl, gen, e, kube, plans, nil)
	}

	c.log.Info("updating cluster", "cluster", cl.Namespace+"/"+cl.Name, "groups", len(u.work), "orphans", len(u.orphans), "heal", u.heal)
	var healing map[string]string
	for _, n := range u.heal {
		if healing == nil {
			healing = map[string]string{}
		}
		healing[n] = fmt.Sprintf("NotReady for %s or more: replacing the host (auto-healing)", c.cfg.AutoHealAfter)
	}
	if cl, err = c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		st.Status, st.StatusReason = wharfv1.StatusUpdateInProgress, ""
		st.Faults = maps.Clone(healing)
		st.ObservedGeneration = gen
	}); err != nil {
		return err
	}
	for _, p := range u.work {
		if err := c.groupStart(ctx, p); err != nil {
			return err
		}
	}
	uctx, cancel := context.WithTimeout(ctx, c.cfg.UpdateTimeout)
	defer cancel()
	c.apply(uctx, kube, e, c.specsFor(cl, e, cr, cl.Status.APIAddress, pull), u, resuming, hosts)
	c.healed(cl, u.heal)
	if ctx.Err() != nil {
		return ctx.Err() // shutdown or deletion: a later sync resumes
	}
	err = c.settle(ctx, cl, gen, e, kube, plans, u)
	c.checkHealth(ctx, cl)
	return err
}

// apply makes the changes of u: dead workers go, new hosts (and the dead
// ones' replacements, of the same names) come and get Ready, then
// surplus hosts are drained and removed. Failures land in u.err and u.faults.
func (c *Controller) apply(ctx context.Context, kube kubernetes.Interface, e *env, specs *hostSpecs, u *update, resuming bool, hosts []provider.Host) {
	errs := map[string]error{}
	var mu sync.Mutex
	fail := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs[name] = err
	}
	parallel(u.heal, func(name string) {
		if err := c.removeDead(ctx, kube, e, name); err != nil {
			fail(name, err)
		}
	})
	var remove []string
	for _, p := range u.work {
		remove = append(remove, p.remove...)
	}
	for _, h := range u.orphans {
		remove = append(remove, h.Name)
	}
	var create []provider.HostSpec
	for _, p := range u.work {
		create = append(create, specsOf(specs, provider.RoleWorker, p.create)...)
	}
	for _, name := range u.heal {
		if errs[name] == nil {
			create = append(create, specs.worker(name))
		}
	}
	var wait []string
	if resuming {
		// A round the service did not live to finish may have left hosts
		// made but not started, or started but not yet Ready.
		for _, h := range hosts {
			if h.Role != provider.RoleWorker || slices.Contains(remove, h.Name) || slices.Contains(u.heal, h.Name) {
				continue
			}
			if h.Running {
				wait = append(wait, h.Name)
			} else {
				create = append(create, specs.worker(h.Name))
			}
		}
	}
	made, createErrs := createHosts(ctx, e.prov, create)
	maps.Copy(errs, createErrs)
	wait = append(wait, slices.Collect(maps.Keys(made))...)
	if len(wait) > 0 {
		if kube == nil {
			u.err = fmt.Errorf("the cluster has no API address to see its nodes at")
		} else {
			wctx, stop := c.watchHosts(ctx, e, wait)
			_, err := waitNodes(wctx, kube, wait)
			stop()
			if err != nil {
				u.err = err
				reasons := faultsOf(err)
				if ne, ok := err.(*nodesError); ok && reasons == nil {
					reasons = ne.reasons
				}
				for n, r := range reasons {
					errs[n] = fmt.Errorf("%s", r)
				}
			}
		}
	}
	parallel(remove, func(name string) {
		if err := c.removeHost(ctx, kube, e, name); err != nil {
			fail(name, err)
		}
	})
	faults, err := hostErrors(errs)
	if u.err == nil {
		u.err = err
	}
	u.faults = faults
	for _, p := range u.work {
		if len(p.remove) > 0 {
			c.clearNodesToRemove(ctx, p, errs)
		}
	}
}

// removeDead removes a dead worker's host, Node and token before it is made anew.
func (c *Controller) removeDead(ctx context.Context, kube kubernetes.Interface, e *env, name string) error {
	c.log.Info("auto-healing: replacing a NotReady worker", "cluster", e.ref.Namespace+"/"+e.ref.Name, "host", name)
	if err := e.prov.DeleteHost(ctx, e.ref, name); err != nil {
		return fmt.Errorf("delete host %q: %w", name, err)
	}
	return forgetNode(ctx, kube, name)
}

// parallel runs f for each name at once and waits for all.
func parallel(names []string, f func(string)) {
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { f(n) })
	}
	wg.Wait()
}
