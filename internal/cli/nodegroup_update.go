package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

func newNodeGroupUpdateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "update CLUSTER NAME replace|add|remove ATTRIBUTE[=VALUE]...",
		Short: "Change a node group: node_count, min_node_count, max_node_count, labels, taints",
		Long: `Change a node group's attributes, with openstack's operations (see
wharf cluster update): node_count, min_node_count, max_node_count (remove:
no limit), labels (labels/KEY for one) and taints (key[=value]:Effect,...;
add appends). Labels and taints go to the group's nodes.`,
		Example: `  wharf nodegroup update demo gpu replace node_count=3 --wait
  wharf nodegroup update demo gpu add taints=dedicated=ml:NoSchedule
  wharf nodegroup update demo default-worker add labels/tier=web`,
		Args: cobra.MinimumNArgs(4),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			return s.updateNodeGroup(ctx, stdio, args[0], args[1], args[2], args[3:], w)
		}),
	}
	w.register(cmd, "until the change is done (UPDATE_COMPLETE)")
	return cmd
}

func (s *service) updateNodeGroup(ctx context.Context, stdio Stdio, cluster, name, op string, items []string, w waitFlags) error {
	full, err := s.nodeGroupName(ctx, cluster, name)
	if err != nil {
		return err
	}
	start := time.Now()
	var out *wharfv1.NodeGroup
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g, err := s.wharf.NodeGroups(s.project).Get(ctx, full, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sp := &g.Spec
		if err := applyUpdate(op, items, map[string]attr{
			"node_count":     {set: func(v string) error { return setInt32(&sp.NodeCount, v) }},
			"min_node_count": {set: func(v string) error { return setInt32(&sp.MinNodeCount, v) }, remove: func() { sp.MinNodeCount = 0 }},
			"max_node_count": {set: func(v string) error {
				sp.MaxNodeCount = new(int32)
				return setInt32(sp.MaxNodeCount, v)
			}, remove: func() { sp.MaxNodeCount = nil }},
			"labels": {labels: &sp.Labels},
			"taints": {
				set: func(v string) (err error) { sp.Taints, err = parseTaints([]string{v}); return err },
				add: func(v string) error {
					ts, err := parseTaints([]string{v})
					sp.Taints = append(sp.Taints, ts...)
					return err
				},
				remove: func() { sp.Taints = nil },
			},
		}); err != nil {
			return usageError{err}
		}
		out, err = s.wharf.NodeGroups(s.project).Update(ctx, g, metav1.UpdateOptions{})
		return err
	})
	if u := (usageError{}); errors.As(err, &u) {
		return u.error
	}
	if err != nil {
		return s.explain(err, "node group", name, nodeGroupFlags)
	}
	// The default group's size is also the cluster's node count.
	if out.Name == resources.DefaultWorkerGroup(cluster) {
		if _, err := s.updateClusterSpec(ctx, cluster, func(cs *wharfv1.ClusterSpec) { cs.NodeCount = out.Spec.NodeCount }); err != nil {
			return err
		}
	}
	return s.afterGroupUpdate(ctx, stdio, cluster, out, start, w, "updated")
}
