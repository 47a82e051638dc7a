package coe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

// errNothingToRecover: the quorum came back with every master (a leader
// election seen as a loss): the recovery ends with nothing done.
var errNothingToRecover = errors.New("the etcd quorum is back with every master: nothing to recover")

// recoverTimeout bounds one quorum recovery.
const recoverTimeout = 2 * time.Minute

// recoverQuorum rebuilds a lost etcd quorum (`wharf cluster recover`):
// the surviving member that applied the most becomes the only member of a
// new cluster, with all its data (etcd's force-new-cluster), and every
// other master is made again on a fresh disk and joins it. What that
// member had applied is all there; writes it had not seen were never
// acknowledged by a quorum. As Kolla's mariadb_recovery and k3s's
// --cluster-reset, but one command and seconds.
func (c *Controller) recoverQuorum(ctx context.Context, cl *wharfv1.Cluster, e *env) error {
	start := c.clock.Now()
	request := cl.Spec.Recover
	cl, err := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		st.Status, st.StatusReason = wharfv1.StatusUpdateInProgress, "rebuilding the etcd quorum"
	})
	if err != nil {
		return err
	}
	c.log.Warn("recovering the etcd quorum", "cluster", cl.Namespace+"/"+cl.Name)
	rctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	survivor, err := c.rebuild(rctx, cl, e)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, errNothingToRecover) {
		c.log.Info("etcd quorum recovery: nothing to do", "cluster", cl.Namespace+"/"+cl.Name, "reason", err)
		err = nil
	}
	_, werr := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		st.Recovered, st.ObservedGeneration = request, cl.Generation
		if err != nil {
			failStatus(st, wharfv1.StatusUpdateFailed, "recover", faultsOf(err), err)
			return
		}
		st.Status, st.StatusReason, st.Faults = wharfv1.StatusUpdateComplete, "", nil
	})
	if err != nil {
		c.log.Warn("etcd quorum recovery failed", "cluster", cl.Namespace+"/"+cl.Name, "err", err)
	} else {
		c.log.Info("etcd quorum recovered", "cluster", cl.Namespace+"/"+cl.Name, "from", survivor, "took", c.clock.Since(start))
		c.queue.Add(cl.Namespace + "/" + cl.Name) // a health check and the usual reconcile next
	}
	return werr
}

// rebuild does the recovery and names the member it was rebuilt from.
func (c *Controller) rebuild(ctx context.Context, cl *wharfv1.Cluster, e *env) (string, error) {
	cr, err := c.ensureCredentials(ctx, cl)
	if err != nil {
		return "", err
	}
	pull, err := c.ensurePullToken(ctx, cl)
	if err != nil {
		return "", err
	}
	hosts, err := e.prov.ListHosts(ctx, e.ref)
	if err != nil {
		return "", fmt.Errorf("list hosts: %w", err)
	}
	masters := mastersOf(hosts)
	views, err := c.memberViews(ctx, cr, masters)
	if err != nil {
		return "", err
	}
	best := mostUpToDate(views)
	if best == nil {
		return "", errors.New("no master's etcd member answers: nothing to rebuild from; create a cluster from a backup (--from-backup)")
	}
	if quorum, _ := etcdVerdict(views); !quorum {
		ep, err := newMasterEndpoint(cr)
		if err != nil {
			return "", err
		}
		c.log.Info("rebuilding the etcd quorum", "cluster", cl.Namespace+"/"+cl.Name, "from", best.host.Name,
			"revision", best.status.Revision, "applied", best.status.AppliedIndex)
		if err := c.forceNewCluster(ctx, ep, best.host); err != nil {
			return "", &hostFault{faults: map[string]string{best.host.Name: "force a new cluster: " + err.Error()}}
		}
		if err := c.waitMasters(ctx, cr, map[string]provider.Host{best.host.Name: best.host}); err != nil {
			return "", err
		}
		if views, err = c.memberViews(ctx, cr, masters); err != nil {
			return "", err
		}
	}
	// A quorum now (made above, or by a recovery this service began
	// before it restarted): the masters that are not its voters are made
	// again. None: the quorum came back on its own.
	var leader *memberView
	for _, v := range views {
		if v.err == nil && v.status.Leader == v.status.ID {
			leader = &v
		}
	}
	if leader == nil {
		// Never make a master again without a leader to join: it could
		// be the one holding the data.
		return "", errors.New("no etcd leader after the rebuild: nothing made again, try again")
	}
	voters := map[string]bool{}
	for _, m := range leader.status.Members {
		voters[m.Name] = !m.Learner
	}
	best = leader
	var redo []provider.Host
	for _, h := range masters {
		if !voters[h.Name] && h.Name != leader.host.Name {
			redo = append(redo, h)
		}
	}
	if len(redo) == 0 {
		return leader.host.Name, errNothingToRecover
	}
	// Every other master, dead or alive with stale data, is made anew and
	// joins the survivor through the cluster's address.
	vip, err := apiVIP(cl)
	if err != nil {
		return "", err
	}
	specs := c.specsFor(cl, e, cr, cl.Status.APIAddress, pull)
	specs.vip, specs.joinMasters = vip.String(), true
	specs.apiAddress = "https://" + net.JoinHostPort(specs.vip, strconv.Itoa(c.cfg.APIPort))
	var mu sync.Mutex
	var wg sync.WaitGroup
	made := map[string]provider.Host{}
	faults := map[string]string{}
	for _, h := range redo {
		wg.Go(func() {
			err := e.prov.DeleteHost(ctx, e.ref, h.Name)
			var nh provider.Host
			if err == nil {
				nh, err = e.prov.CreateHost(ctx, specs.master(h.Name))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				faults[h.Name] = err.Error()
				return
			}
			made[h.Name] = nh
		})
	}
	wg.Wait()
	if len(faults) > 0 {
		return "", &hostFault{faults: faults}
	}
	return best.host.Name, c.waitMasters(ctx, cr, made)
}

// mostUpToDate is the answering member that applied the most of the log
// (then the highest revision, then the first by name); nil if none answers.
func mostUpToDate(views []memberView) *memberView {
	var best *memberView
	for i := range views {
		v := &views[i]
		if v.err != nil {
			continue
		}
		if best == nil || v.status.AppliedIndex > best.status.AppliedIndex ||
			(v.status.AppliedIndex == best.status.AppliedIndex && v.status.Revision > best.status.Revision) {
			best = v
		}
	}
	return best
}

// forceNewCluster asks the survivor to rebuild. A member refuses while it
// knows a leader, and a follower forgets a dead leader only once its
// election timeout passes without a heartbeat: a refusal is asked again
// for a few seconds, then stands.
func (c *Controller) forceNewCluster(ctx context.Context, ep *masterEndpoint, h provider.Host) error {
	url := apiAddressOf(h, c.cfg.APIPort) + wire.EtcdForceNewClusterPath
	deadline := c.clock.Now().Add(5 * time.Second)
	for {
		err := ep.do(ctx, http.MethodPost, url, nil)
		var se *statusError
		if err == nil || !errors.As(err, &se) || se.code != http.StatusConflict || c.clock.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-c.clock.After(250 * time.Millisecond):
		}
	}
}
