package cli

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newClusterListCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the project's clusters",
		Example: `  wharf cluster list
  wharf cluster list -f value -c name -c status`,
		Args: cobra.NoArgs,
		RunE: sf.withService(func(ctx context.Context, s *service, _ []string) error {
			ns, cols := s.project, clusterListColumns
			if all {
				ns, cols = "", append([]string{"project_id"}, clusterListColumns...)
			}
			list, err := s.wharf.Clusters(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return s.explain(err, "cluster", "", nil)
			}
			rs := make([]record, len(list.Items))
			for i := range list.Items {
				rs[i] = clusterRecord(&list.Items[i], nil)
			}
			return out.printList(stdio.Out, rs, cols)
		}),
	}
	out.register(cmd)
	cmd.Flags().BoolVar(&all, "all-projects", false, "list the clusters of every project")
	return cmd
}
