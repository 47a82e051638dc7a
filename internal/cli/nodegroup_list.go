package cli

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
