package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

type resizeOptions struct {
	remove    []string
	nodeGroup string
	wait      waitFlags
}

func newClusterResizeCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	o := &resizeOptions{}
	cmd := &cobra.Command{
		Use:   "resize NAME NODE_COUNT",
		Short: "Set the number of worker nodes of a cluster (or of one of its node groups)",
		Long: `Resize the cluster's default node group (or --nodegroup): the controller
adds hosts, or removes them, those named by --nodes-to-remove first, then
the newest. The cluster goes UPDATE_IN_PROGRESS, then UPDATE_COMPLETE.`,
		Example: `  wharf cluster resize demo 4
  wharf cluster resize demo 2 --nodes-to-remove demo-node-1 --wait
  wharf cluster resize demo 3 --nodegroup gpu`,
		Args: exactArgs(2, "NAME and NODE_COUNT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("NODE_COUNT %q: want a number of nodes, 0 or more", args[1])
			}
			s, err := sf.connect(cmd.Context())
			if err != nil {
				return err
			}
			return s.resizeCluster(cmd.Context(), stdio, args[0], int32(n), o)
		},
	}
	cmd.Flags().StringSliceVar(&o.remove, "nodes-to-remove", nil, "hosts to remove first, e.g. demo-node-1,demo-node-3")
	cmd.Flags().StringVar(&o.nodeGroup, "nodegroup", "", "the node group to resize (default: the default worker group)")
	o.wait.register(cmd, "until the resize is done (UPDATE_COMPLETE)")
	return cmd
}

func (s *service) resizeCluster(ctx context.Context, stdio Stdio, name string, n int32, o *resizeOptions) error {
	c, err := s.wharf.Clusters(s.project).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return s.explain(err, "cluster", name, nil)
	}
	start := time.Now()
	group := resources.DefaultWorkerGroup(name)
	if o.nodeGroup != "" {
		if group, err = s.nodeGroupName(ctx, name, o.nodeGroup); err != nil {
			return err
		}
	}
	if group != resources.DefaultWorkerGroup(name) {
		g, err := s.resizeGroup(ctx, group, n, o.remove)
		if err != nil {
			return err
		}
		return s.afterGroupUpdate(ctx, stdio, c.Name, g, start, o.wait, "updated")
	}
	// The default group's size is also the cluster's nodeCount: both say it.
	if err := s.resizeWorkerGroup(ctx, name, n, o.remove); err != nil {
		return err
	}
	updated, err := s.updateClusterSpec(ctx, name, func(cs *wharfv1.ClusterSpec) { cs.NodeCount = n })
	if err != nil {
		return err
	}
	return s.afterClusterUpdate(ctx, stdio, updated, start, o.wait)
}

// afterGroupUpdate reports a node group change, or waits for it to be
// done; done says what was done ("created", "updated").
func (s *service) afterGroupUpdate(ctx context.Context, stdio Stdio, cluster string, g *wharfv1.NodeGroup, start time.Time, w waitFlags, done string) error {
	short := strings.TrimPrefix(g.Name, cluster+"-")
	if !w.wait {
		fmt.Fprintf(stdio.Out, "Request to update node group %s of cluster %s has been accepted.\n", short, cluster)
		return nil
	}
	timeout := w.timeoutOr(defaultWaitTimeout)
	status := ""
	err := waitObject(ctx, s.wharf.NodeGroups(s.project), &wharfv1.NodeGroup{}, s.project, g.Name, timeout, false, func(o runtime.Object) (bool, error) {
		cur := o.(*wharfv1.NodeGroup)
		if cur.Status.Status != status && cur.Status.Status != "" {
			status = cur.Status.Status
			fmt.Fprintf(stdio.Out, "  %7s  %s\n", since(start), status)
		}
		if cur.Status.ObservedGeneration < g.Generation {
			return false, nil
		}
		switch cur.Status.Status {
		case wharfv1.StatusUpdateComplete, wharfv1.StatusCreateComplete:
			return true, nil
		case wharfv1.StatusUpdateFailed, wharfv1.StatusCreateFailed:
			return false, fmt.Errorf("node group %s of cluster %s %s: %s", short, cluster, cur.Status.Status, cur.Status.StatusReason)
		}
		return false, nil
	})
	if err := waitError(ctx, err, "node group", short, timeout, status); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "Node group %s of cluster %s %s in %s\n", short, cluster, done, since(start))
	return nil
}
