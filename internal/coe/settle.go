package coe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

// settle records what a created cluster is now: its groups' labels and
// taints on their nodes, each group's hosts and outcome, the cluster's
// node addresses, the outcome of update u (nil: none ran) and generation
// gen of the cluster as observed.
func (c *Controller) settle(ctx context.Context, cl *wharfv1.Cluster, gen int64, e *env, kube kubernetes.Interface, plans []*plan, u *update) error {
	hosts, err := e.prov.ListHosts(ctx, e.ref)
	if err != nil {
		return fmt.Errorf("cluster %s/%s: list hosts: %w", cl.Namespace, cl.Name, err)
	}
	groups := make([]*wharfv1.NodeGroup, len(plans))
	for i, p := range plans {
		groups[i] = p.group
	}
	now, _ := planGroups(cl.Name, groups, hosts)
	var errs []error
	var nodes map[string]*corev1.Node
	if kube != nil {
		if nodes, err = listNodes(ctx, kube); err != nil {
			errs = append(errs, err)
			kube = nil // labels and taints wait for the next round
		}
	}
	var invalid []string
	workers := map[string]provider.Host{}
	for _, fresh := range now {
		i := slices.IndexFunc(plans, func(p *plan) bool { return p.group.Name == fresh.group.Name })
		p := plans[i]
		var names []string
		for _, h := range fresh.hosts {
			names = append(names, h.Name)
			if fresh.role() == provider.RoleWorker {
				workers[h.Name] = h
			}
		}
		if kube != nil && fresh.role() == provider.RoleWorker {
			if err := applyGroup(ctx, kube, p.group, names, nodes); err != nil {
				errs = append(errs, err)
			}
		}
		worked := u != nil && slices.Contains(u.work, p)
		failure := fresh.invalid
		if worked && u.err != nil {
			failure = u.err.Error()
		}
		if fresh.invalid != "" && !groupBlocked(p.group) {
			invalid = append(invalid, fmt.Sprintf("node group %q: %s", p.group.Name, fresh.invalid))
		}
		if err := c.groupDone(ctx, p, names, worked, failure); err != nil {
			errs = append(errs, err)
		}
	}
	_, err = c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		st.NodeAddresses = addresses(workers)
		st.ObservedGeneration = max(st.ObservedGeneration, gen)
		switch {
		case u != nil && u.err != nil:
			st.Faults = nil
			failStatus(st, wharfv1.StatusUpdateFailed, "update", u.faults, u.err)
		case u != nil, st.Status == wharfv1.StatusUpdateInProgress:
			st.Status, st.StatusReason, st.Faults = wharfv1.StatusUpdateComplete, "", nil
		}
		if len(invalid) > 0 {
			st.Status, st.StatusReason = wharfv1.StatusUpdateFailed, strings.Join(invalid, "; ")
		}
		if strings.HasSuffix(st.Status, "_COMPLETE") {
			st.StatusReason = "" // e.g. a lost provider's, now found again
		}
	})
	if u != nil {
		if u.err != nil {
			c.log.Warn("cluster update failed", "cluster", cl.Namespace+"/"+cl.Name, "err", u.err)
		} else {
			c.log.Info("cluster updated", "cluster", cl.Namespace+"/"+cl.Name, "nodes", len(workers))
		}
	}
	return errors.Join(append(errs, err)...)
}

func listNodes(ctx context.Context, kube kubernetes.Interface) (map[string]*corev1.Node, error) {
	l, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]*corev1.Node, len(l.Items))
	for i := range l.Items {
		out[l.Items[i].Name] = &l.Items[i]
	}
	return out, nil
}

// clearNodesToRemove drops the hosts that were removed from the group's
// nodesToRemove: a later host may get the same name and must not be
// picked first for no reason.
func (c *Controller) clearNodesToRemove(ctx context.Context, p *plan, failed map[string]error) {
	removed := func(name string) bool {
		return slices.Contains(p.remove, name) && failed[name] == nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g, err := c.obj.groups.get(ctx, p.group.Namespace, p.group.Name)
		if err != nil {
			return err
		}
		keep := slices.DeleteFunc(slices.Clone(g.Spec.NodesToRemove), removed)
		if len(keep) == len(g.Spec.NodesToRemove) {
			return nil
		}
		g.Spec.NodesToRemove = keep
		if len(keep) == 0 {
			g.Spec.NodesToRemove = nil
		}
		g, err = c.obj.groups.update(ctx, g)
		if err == nil {
			// Keep the generation this sync saw observed: the edit is ours.
			p.group.Generation, p.group.ResourceVersion = g.Generation, g.ResourceVersion
		}
		return err
	})
	if err != nil {
		c.log.Warn("nodesToRemove not cleared", "nodegroup", p.group.Namespace+"/"+p.group.Name, "err", err)
	}
}
