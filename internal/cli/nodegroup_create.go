package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

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
