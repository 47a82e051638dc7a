package coe

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func masterCount(cl *wharfv1.Cluster) int32 {
	if cl.Spec.MasterCount <= 0 {
		return 1
	}
	return cl.Spec.MasterCount
}

// groupsOf lists the cluster's node groups, those being deleted left out:
// their hosts are orphans to remove.
func (c *Controller) groupsOf(ctx context.Context, cl *wharfv1.Cluster) ([]*wharfv1.NodeGroup, error) {
	all, err := c.obj.groups.list(ctx, cl.Namespace)
	if err != nil {
		return nil, fmt.Errorf("cluster %s/%s: list node groups: %w", cl.Namespace, cl.Name, err)
	}
	var out []*wharfv1.NodeGroup
	for i := range all.Items {
		if g := &all.Items[i]; g.Spec.Cluster == cl.Name && g.DeletionTimestamp == nil {
			out = append(out, g)
		}
	}
	return out, nil
}

// ensureGroups makes the default node groups if they are missing and keeps
// the cluster's nodeCount and its default worker group's in step: whichever
// changed last wins. The cluster changed last when its generation is not
// yet observed; otherwise the group was resized (`wharf cluster resize`
// may write either) and the cluster's spec follows it. A cluster nodeCount
// outside the group's bounds fails the update and leaves the group as it is.
//
// The caller records the generation as observed together with the outcome
// (UPDATE_IN_PROGRESS, or nothing to do): `wharf cluster resize --wait`
// takes an observed generation with a *_COMPLETE status as done.
func (c *Controller) ensureGroups(ctx context.Context, cl *wharfv1.Cluster) (*wharfv1.Cluster, []*wharfv1.NodeGroup, error) {
	groups, err := c.groupsOf(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	if indexOf(groups, defaultMasterGroup(cl.Name)) < 0 {
		g, err := c.createGroup(ctx, cl, defaultMasterGroup(cl.Name), wharfv1.RoleMaster, masterCount(cl))
		if err != nil {
			return nil, nil, err
		}
		groups = append(groups, g)
	}
	i := indexOf(groups, defaultWorkerGroup(cl.Name))
	if i < 0 {
		g, err := c.createGroup(ctx, cl, defaultWorkerGroup(cl.Name), wharfv1.RoleWorker, cl.Spec.NodeCount)
		if err != nil {
			return nil, nil, err
		}
		groups, i = append(groups, g), len(groups)
	}
	violation := ""
	if g := groups[i]; g.Spec.NodeCount != cl.Spec.NodeCount {
		resized := g.DeepCopy()
		resized.Spec.NodeCount = cl.Spec.NodeCount
		clusterFirst := cl.Generation != cl.Status.ObservedGeneration
		switch {
		case clusterFirst && sizeProblem(resized) != "":
			violation = fmt.Sprintf("nodeCount %d: node group %s: %s", cl.Spec.NodeCount, g.Name, sizeProblem(resized))
			if groups[i], err = c.setGroupStatus(ctx, g, func(st *wharfv1.NodeGroupStatus) {
				st.Status, st.StatusReason = wharfv1.StatusUpdateFailed, violation
			}); err != nil {
				return nil, nil, err
			}
		case clusterFirst:
			if groups[i], err = c.obj.groups.update(ctx, resized); err != nil {
				return nil, nil, fmt.Errorf("node group %s/%s: resize to %d: %w", g.Namespace, g.Name, cl.Spec.NodeCount, err)
			}
		default:
			next := cl.DeepCopy()
			next.Spec.NodeCount = g.Spec.NodeCount
			if cl, err = c.obj.clusters.update(ctx, next); err != nil {
				return nil, nil, fmt.Errorf("cluster %s/%s: follow node group %s to %d nodes: %w", cl.Namespace, cl.Name, g.Name, g.Spec.NodeCount, err)
			}
		}
	}
	if violation != "" {
		gen := cl.Generation
		if cl, err = c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
			st.ObservedGeneration = gen
			if st.Status != wharfv1.StatusCreateInProgress {
				st.Status, st.StatusReason = wharfv1.StatusUpdateFailed, violation
			}
		}); err != nil {
			return nil, nil, err
		}
	}
	return cl, groups, nil
}

func indexOf(groups []*wharfv1.NodeGroup, name string) int {
	for i, g := range groups {
		if g.Name == name {
			return i
		}
	}
	return -1
}

// createGroup makes a default node group, owned by the cluster.
func (c *Controller) createGroup(ctx context.Context, cl *wharfv1.Cluster, name, role string, count int32) (*wharfv1.NodeGroup, error) {
	g := &wharfv1.NodeGroup{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cl.Namespace,
			Labels:          map[string]string{"wharf.dev/cluster": cl.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cl, wharfv1.SchemeGroupVersion.WithKind("Cluster"))},
		},
		Spec: wharfv1.NodeGroupSpec{Cluster: cl.Name, Role: role, NodeCount: count},
	}
	out, err := c.obj.groups.create(ctx, g)
	if apierrors.IsAlreadyExists(err) {
		// Being deleted (left out of groupsOf): wait for it to go.
		return nil, fmt.Errorf("node group %s/%s: an old one is still being deleted: %w", cl.Namespace, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("node group %s/%s: create: %w", cl.Namespace, name, err)
	}
	return out, nil
}

// groupCreating: the group has not been complete yet.
func groupCreating(st *wharfv1.NodeGroupStatus) bool {
	return st.Status == "" || st.Status == wharfv1.StatusCreateInProgress || st.Status == wharfv1.StatusCreateFailed
}

// groupBlocked: the group's last resize failed and the group has not
// changed since; retrying would fail the same way.
func groupBlocked(g *wharfv1.NodeGroup) bool {
	failed := g.Status.Status == wharfv1.StatusCreateFailed || g.Status.Status == wharfv1.StatusUpdateFailed
	return failed && g.Status.ObservedGeneration == g.Generation
}

// groupStart marks a group whose hosts are about to change.
func (c *Controller) groupStart(ctx context.Context, p *plan) error {
	var err error
	p.group, err = c.setGroupStatus(ctx, p.group, func(st *wharfv1.NodeGroupStatus) {
		if groupCreating(st) {
			st.Status = wharfv1.StatusCreateInProgress
		} else {
			st.Status = wharfv1.StatusUpdateInProgress
		}
		st.StatusReason = ""
	})
	return err
}

// groupDone records a group's hosts (nodes) and, when worked or failure
// says so, the outcome of changing them.
func (c *Controller) groupDone(ctx context.Context, p *plan, nodes []string, worked bool, failure string) error {
	g := p.group
	var err error
	p.group, err = c.setGroupStatus(ctx, g, func(st *wharfv1.NodeGroupStatus) {
		st.ObservedGeneration = g.Generation
		st.Nodes = nodes
		creating := groupCreating(st)
		switch {
		case failure != "" && creating:
			st.Status, st.StatusReason = wharfv1.StatusCreateFailed, failure
		case failure != "":
			st.Status, st.StatusReason = wharfv1.StatusUpdateFailed, failure
		case worked && creating, st.Status == "", st.Status == wharfv1.StatusCreateInProgress:
			st.Status, st.StatusReason = wharfv1.StatusCreateComplete, ""
		case worked, st.Status == wharfv1.StatusUpdateInProgress:
			st.Status, st.StatusReason = wharfv1.StatusUpdateComplete, ""
		}
	})
	return err
}
