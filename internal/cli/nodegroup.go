package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

var nodeGroupListColumns = []string{"uuid", "name", "node_count", "role", "status"}

var nodeGroupFlags = map[string]string{
	"spec.nodeCount": "--node-count", "spec.minNodeCount": "--min-nodes", "spec.maxNodeCount": "--max-nodes",
	"spec.labels": "--labels", "spec.taints": "--taint", "spec.role": "--role", "spec.cluster": "CLUSTER",
	"spec.nodesToRemove": "--nodes-to-remove",
}

// newNodeGroupCmd is `wharf nodegroup`: Magnum's `openstack coe nodegroup`.
func newNodeGroupCmd(stdio Stdio) *cobra.Command {
	sf := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "nodegroup",
		Short: "Manage the node groups of a cluster: sets of hosts with a size, labels and taints",
		Long: `A cluster's hosts are in node groups (openstack coe nodegroup):
default-master (the control plane) and default-worker (whose size is the
cluster's node count) come with the cluster; more worker groups can be
added, each with its size (within --min-nodes and --max-nodes) and the
labels and taints its nodes get. Hosts of group G of cluster C are named
C-G-1, C-G-2, ...; the object is C-G in the cluster's project.`,
		Example: `  wharf nodegroup create demo gpu --node-count 2 --labels gpu=true --taint gpu=true:NoSchedule
  wharf nodegroup list demo
  wharf nodegroup update demo gpu replace node_count=3
  wharf nodegroup delete demo gpu`,
	}
	sf.register(cmd)
	cmd.AddCommand(newNodeGroupCreateCmd(sf, stdio), newNodeGroupListCmd(sf, stdio), newNodeGroupShowCmd(sf, stdio),
		newNodeGroupDeleteCmd(sf, stdio), newNodeGroupUpdateCmd(sf, stdio))
	return cmd
}

type nodeGroupOptions struct {
	spec     wharfv1.NodeGroupSpec
	maxNodes int32
	labels   []string
	taints   []string
	out      outputFlags
	wait     waitFlags
}

func newNodeGroupCreateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	o := &nodeGroupOptions{}
	cmd := &cobra.Command{
		Use:     "create CLUSTER NAME",
		Short:   "Add a node group to a cluster",
		Example: `  wharf nodegroup create demo gpu --node-count 2 --max-nodes 4 --labels gpu=true --taint gpu=true:NoSchedule --wait`,
		Args:    exactArgs(2, "CLUSTER and NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := o.group(args[0], args[1], cmd.Flags().Changed("max-nodes"))
			if err != nil {
				return err
			}
			s, err := sf.connect(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			g.Namespace = s.project
			created, err := s.wharf.NodeGroups(s.project).Create(cmd.Context(), g, metav1.CreateOptions{})
			if err != nil {
				return s.explain(err, "node group", args[1], nodeGroupFlags)
			}
			if o.wait.wait {
				return s.afterGroupUpdate(cmd.Context(), stdio, args[0], created, start, o.wait, "created")
			}
			return o.out.printOne(stdio.Out, nodeGroupRecord(created))
		},
	}
	f := cmd.Flags()
	f.Int32Var(&o.spec.NodeCount, "node-count", 1, "hosts in the group")
	f.Int32Var(&o.spec.MinNodeCount, "min-nodes", 0, "the group's smallest size")
	f.Int32Var(&o.maxNodes, "max-nodes", 0, "the group's largest size (default: no limit)")
	f.StringVar(&o.spec.Role, "role", wharfv1.RoleWorker, "the hosts' role: worker")
	f.StringArrayVar(&o.labels, "labels", nil, "labels of the group's nodes, key=value[,key=value...] (repeatable)")
	f.StringArrayVar(&o.taints, "taint", nil, "a taint of the group's nodes, key[=value]:Effect (repeatable)")
	o.out.register(cmd)
	o.wait.register(cmd, "until the group's hosts are up (CREATE_COMPLETE)")
	return cmd
}

func (o *nodeGroupOptions) group(cluster, name string, maxSet bool) (*wharfv1.NodeGroup, error) {
	labels, err := parseLabels(o.labels)
	if err != nil {
		return nil, err
	}
	taints, err := parseTaints(o.taints)
	if err != nil {
		return nil, err
	}
	g := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: resources.NodeGroupName(cluster, name)}, Spec: o.spec}
	g.Spec.Cluster, g.Spec.Labels, g.Spec.Taints = cluster, labels, taints
	if maxSet {
		g.Spec.MaxNodeCount = &o.maxNodes
	}
	return g, nil
}

// parseTaints reads key[=value]:Effect taints.
func parseTaints(values []string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			kv, effect, ok := strings.Cut(t, ":")
			if !ok || kv == "" {
				return nil, fmt.Errorf("taint %q: want key[=value]:Effect, e.g. gpu=true:NoSchedule", t)
			}
			key, value, _ := strings.Cut(kv, "=")
			out = append(out, corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)})
		}
	}
	return out, nil
}

func newNodeGroupListCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "list CLUSTER",
		Short: "List a cluster's node groups",
		Args:  exactArgs(1, "CLUSTER"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			if _, err := s.wharf.Clusters(s.project).Get(ctx, args[0], metav1.GetOptions{}); err != nil {
				return s.explain(err, "cluster", args[0], nil)
			}
			list, err := s.wharf.NodeGroups(s.project).List(ctx, metav1.ListOptions{FieldSelector: "spec.cluster=" + args[0]})
			if err != nil {
				return s.explain(err, "node group", "", nil)
			}
			rs := make([]record, len(list.Items))
			for i := range list.Items {
				rs[i] = nodeGroupRecord(&list.Items[i])
			}
			return out.printList(stdio.Out, rs, nodeGroupListColumns)
		}),
	}
	out.register(cmd)
	return cmd
}

func newNodeGroupShowCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "show CLUSTER NAME",
		Short: "Show a node group of a cluster",
		Args:  exactArgs(2, "CLUSTER and NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			g, err := s.getNodeGroup(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			return out.printOne(stdio.Out, nodeGroupRecord(g))
		}),
	}
	out.register(cmd)
	return cmd
}

func newNodeGroupDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLUSTER NAME...",
		Short: "Delete node groups of a cluster and their hosts (not the default ones)",
		Args:  cobra.MinimumNArgs(2),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			var errs []error
			for _, name := range args[1:] {
				full, err := s.nodeGroupName(ctx, args[0], name)
				if err == nil {
					err = s.explain(s.wharf.NodeGroups(s.project).Delete(ctx, full, metav1.DeleteOptions{}), "node group", name, nil)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(stdio.Out, "Request to delete node group %s of cluster %s has been accepted.\n", name, args[0])
			}
			return errors.Join(errs...)
		}),
	}
}

// nodeGroupName finds the object name of a cluster's group given as its
// short name (gpu, default-worker) or its object name (demo-gpu).
func (s *service) nodeGroupName(ctx context.Context, cluster, name string) (string, error) {
	g, err := s.getNodeGroup(ctx, cluster, name)
	if err != nil {
		return "", err
	}
	return g.Name, nil
}

func (s *service) getNodeGroup(ctx context.Context, cluster, name string) (*wharfv1.NodeGroup, error) {
	for _, full := range []string{resources.NodeGroupName(cluster, name), name} {
		g, err := s.wharf.NodeGroups(s.project).Get(ctx, full, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("node group %s of cluster %s: %w", name, cluster, err)
		case g.Spec.Cluster == cluster:
			return g, nil
		}
	}
	return nil, fmt.Errorf("cluster %q has no node group %q in project %q: see `wharf nodegroup list %s`", cluster, name, s.project, cluster)
}

// nodeGroupRecord is a node group with Magnum's field names; its name is
// the short one, as the cluster's group.
func nodeGroupRecord(g *wharfv1.NodeGroup) record {
	var maxNodes any = ""
	if g.Spec.MaxNodeCount != nil {
		maxNodes = int64(*g.Spec.MaxNodeCount)
	}
	taints := make([]string, len(g.Spec.Taints))
	for i, t := range g.Spec.Taints {
		taints[i] = t.ToString()
	}
	def := g.Name == resources.DefaultMasterGroup(g.Spec.Cluster) || g.Name == resources.DefaultWorkerGroup(g.Spec.Cluster)
	return record{
		{"uuid", string(g.UID)},
		{"name", strings.TrimPrefix(g.Name, g.Spec.Cluster+"-")},
		{"cluster_id", g.Spec.Cluster},
		{"project_id", g.Namespace},
		{"role", g.Spec.Role},
		{"is_default", def},
		{"node_count", int64(g.Spec.NodeCount)},
		{"min_node_count", int64(g.Spec.MinNodeCount)},
		{"max_node_count", maxNodes},
		{"labels", g.Spec.Labels},
		{"taints", taints},
		{"nodes", g.Status.Nodes},
		{"nodes_to_remove", g.Spec.NodesToRemove},
		{"status", g.Status.Status},
		{"status_reason", g.Status.StatusReason},
		{"created_at", timestamp(&g.CreationTimestamp)},
	}
}
