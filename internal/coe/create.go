package coe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/resources"
)

// errCreateTimeout is the cause of a create's context when createTimeout ran out.
var errCreateTimeout = errors.New("create timed out")

// create provisions a cluster. Every step is idempotent, so a create
// interrupted by a crash of the service resumes where it stopped; it fails
// cleanly (CREATE_FAILED, with the step and hosts to blame) when a step
// fails or once createTimeout, counted from the cluster's creation, has
// passed. Errors of the service's own API are retried within that time.
func (c *Controller) create(ctx context.Context, cl *wharfv1.Cluster, e *env) error {
	timeout := resources.DefaultCreateTimeout
	if cl.Spec.CreateTimeout != nil && cl.Spec.CreateTimeout.Duration > 0 {
		timeout = cl.Spec.CreateTimeout.Duration
	}
	if cl.Status.Status == "" {
		var err error
		cl, err = c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
			st.Status, st.StatusReason = wharfv1.StatusCreateInProgress, ""
		})
		if err != nil {
			return err
		}
		c.log.Info("creating cluster", "cluster", cl.Namespace+"/"+cl.Name, "provider", e.prov.Name(),
			"masters", masterCount(cl), "nodes", cl.Spec.NodeCount)
	}
	start := c.clock.Now()
	remaining := cl.CreationTimestamp.Add(timeout).Sub(start)
	cctx, cancel := context.WithTimeoutCause(ctx, remaining, errCreateTimeout)
	defer cancel()
	var err error
	if remaining > 0 {
		err = c.provision(cctx, cl, e)
	} else {
		// Resumed after the service was down for longer than the timeout.
		err = failStep("create", nil, fmt.Errorf("not finished %s after the cluster was created", timeout))
	}
	if err == nil {
		c.log.Info("cluster created", "cluster", cl.Namespace+"/"+cl.Name, "took", c.clock.Since(start))
		return nil
	}
	if ctx.Err() != nil {
		// Shutdown or deletion, not a failure: a later sync resumes or deletes.
		return ctx.Err()
	}
	step, faults := "create", map[string]string(nil)
	var se *stepError
	timedOut := errors.Is(context.Cause(cctx), errCreateTimeout)
	if errors.As(err, &se) {
		step, faults, err = se.step, se.faults, se.err
	} else if !timedOut {
		return fmt.Errorf("cluster %s/%s: create: %w", cl.Namespace, cl.Name, err)
	}
	if timedOut {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	c.log.Warn("cluster create failed", "cluster", cl.Namespace+"/"+cl.Name, "step", step, "err", err)
	_, werr := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		failStatus(st, wharfv1.StatusCreateFailed, step, faults, err)
	})
	return werr
}

// provision runs the create's steps. A step that failed is a *stepError;
// other errors are the service API's, worth retrying.
func (c *Controller) provision(ctx context.Context, cl *wharfv1.Cluster, e *env) error {
	restore, err := c.restoreSource(ctx, cl) // backup_restore.go: checked before anything is made
	if err != nil {
		return err
	}
	cr, err := c.ensureCredentials(ctx, cl)
	if err != nil {
		return err
	}
	pull, err := c.ensurePullToken(ctx, cl)
	if err != nil {
		return err
	}
	if cl, err = c.addStep(ctx, cl, stepCredentials, nil); err != nil {
		return err
	}
	if cl, err = c.ensureLoadBalancerBlock(ctx, cl, e); err != nil {
		return err
	}
	cl, groups, err := c.ensureGroups(ctx, cl)
	if err != nil {
		return err
	}
	gen := cl.Generation
	existing, err := e.prov.ListHosts(ctx, e.ref)
	if err != nil {
		return failStep(stepMasterHosts, nil, fmt.Errorf("list hosts: %w", err))
	}
	plans, _ := planGroups(cl.Name, groups, existing)
	var masterPlan *plan
	var workerPlans []*plan
	for _, p := range plans {
		if p.invalid != "" {
			return failStep("node groups", map[string]string{p.group.Name: p.invalid}, fmt.Errorf("node group %q: %s", p.group.Name, p.invalid))
		}
		if p.role() == provider.RoleMaster {
			masterPlan = p
		} else {
			workerPlans = append(workerPlans, p)
		}
	}

	// Masters, then their API: workers need its address.
	if masterPlan == nil {
		return failStep("node groups", nil, fmt.Errorf("no node group %q", defaultMasterGroup(cl.Name)))
	}
	specs := c.specsFor(cl, e, cr, "", pull)
	specs.restore = restore.forHost(masterPlan.names()[0])
	if isHA(cl) {
		vip, err := apiVIP(cl)
		if err != nil {
			return failStep(stepMasterHosts, nil, err)
		}
		specs.vip, specs.bootstrapMaster = vip.String(), masterPlan.names()[0]
		specs.apiAddress = "https://" + net.JoinHostPort(specs.vip, strconv.Itoa(c.cfg.APIPort))
	}
	masters, errs := createHosts(ctx, e.prov, specsOf(specs, provider.RoleMaster, masterPlan.names()))
	if faults, err := hostErrors(errs); err != nil {
		return failStep(stepMasterHosts, faults, err)
	}
	if specs.apiAddress == "" {
		specs.apiAddress = apiAddressOf(masters[masterPlan.names()[0]], c.cfg.APIPort)
	}
	if cl, err = c.addStep(ctx, cl, stepMasterHosts, func(st *wharfv1.ClusterStatus) {
		st.APIAddress, st.MasterAddresses = specs.apiAddress, addresses(masters)
	}); err != nil {
		return err
	}
	kube, err := c.clusterAPI(cl, cr, specs.apiAddress)
	if err != nil {
		return err
	}
	var workerSpecs []provider.HostSpec
	var names []string
	for _, p := range workerPlans {
		workerSpecs = append(workerSpecs, specsOf(specs, provider.RoleWorker, p.names())...)
		names = append(names, p.names()...)
	}
	// Workers of a multi-master cluster know the API's address before it
	// answers: they are made while the masters start, and join when it
	// does. A single master's address is its host's, known only now.
	type made struct {
		hosts map[string]provider.Host
		errs  map[string]error
	}
	early := make(chan made, 1)
	if isHA(cl) {
		go func() {
			h, errs := createHosts(ctx, e.prov, workerSpecs)
			early <- made{h, errs}
		}()
	}
	wctx, stop := c.watchHosts(ctx, e, masterPlan.names())
	err = c.waitAPI(wctx, kube, specs.apiAddress)
	if err == nil && isHA(cl) {
		err = c.waitMasters(wctx, cr, masters)
	}
	stop()
	if err != nil {
		return failStep(stepControlPlane, faultsOf(err), err)
	}
	version, err := kube.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("version of %s: %w", specs.apiAddress, err)
	}
	if cl, err = c.addStep(ctx, cl, stepControlPlane, func(st *wharfv1.ClusterStatus) {
		st.COEVersion = version.GitVersion
	}); err != nil {
		return err
	}

	// Workers, all groups at once.
	var workers map[string]provider.Host
	if isHA(cl) {
		m := <-early
		workers, errs = m.hosts, m.errs
	} else {
		workers, errs = createHosts(ctx, e.prov, workerSpecs)
	}
	if faults, err := hostErrors(errs); err != nil {
		return failStep(stepWorkerHosts, faults, err)
	}
	if cl, err = c.addStep(ctx, cl, stepWorkerHosts, func(st *wharfv1.ClusterStatus) {
		st.NodeAddresses = addresses(workers)
	}); err != nil {
		return err
	}
	wctx, stop = c.watchHosts(ctx, e, names)
	nodes, err := waitNodes(wctx, kube, names)
	stop()
	if err != nil {
		faults := faultsOf(err)
		if ne := (*nodesError)(nil); faults == nil && errors.As(err, &ne) {
			faults = ne.reasons
		}
		return failStep(stepNodesReady, faults, err)
	}
	for _, p := range workerPlans {
		if err := applyGroup(ctx, kube, p.group, p.names(), nodes); err != nil {
			return err
		}
	}
	for _, p := range plans {
		if err := c.groupDone(ctx, p, p.names(), true, ""); err != nil {
			return err
		}
	}
	reasons := map[string]string{"api": "ok"}
	for n := range nodes {
		reasons[n] = readyReason
	}
	if isHA(cl) {
		// Every master was a voter with a leader a moment ago: say so
		// per master from the start, as the health loop will.
		if _, masters, err := c.probeMasters(ctx, cl, cr); err == nil {
			maps.Copy(reasons, masters)
		}
	}
	_, err = c.addStep(ctx, cl, stepNodesReady, func(st *wharfv1.ClusterStatus) {
		st.Status, st.StatusReason, st.Faults = wharfv1.StatusCreateComplete, "", nil
		st.ObservedGeneration = gen
		st.ContainerVersion = containerVersion(nodes)
		st.HealthStatus, st.HealthStatusReason = wharfv1.HealthHealthy, reasons
	})
	return err
}

// addStep records a finished step, with more status from mutate.
func (c *Controller) addStep(ctx context.Context, cl *wharfv1.Cluster, step string, mutate func(*wharfv1.ClusterStatus)) (*wharfv1.Cluster, error) {
	now := c.now()
	return c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		addStep(st, step, now)
		if mutate != nil {
			mutate(st)
		}
	})
}

func specsOf(s *hostSpecs, role string, names []string) []provider.HostSpec {
	out := make([]provider.HostSpec, len(names))
	for i, n := range names {
		out[i] = s.forRole(role, n)
	}
	return out
}

// addresses lists hosts' addresses, ordered by host name.
func addresses(hosts map[string]provider.Host) []string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(hosts)) {
		out = append(out, hosts[n].Address)
	}
	return out
}

// containerVersion is the runtime of the first node, by name.
func containerVersion(nodes map[string]*corev1.Node) string {
	for _, n := range slices.Sorted(maps.Keys(nodes)) {
		if v := nodes[n].Status.NodeInfo.ContainerRuntimeVersion; v != "" {
			return v
		}
	}
	return ""
}
