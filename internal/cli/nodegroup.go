package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
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
