package cli

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newClusterShowCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a cluster's fields (status, addresses, labels, ...)",
		Example: `  wharf cluster show demo
  wharf cluster show demo -f value -c api_address
  wharf cluster show demo -f json`,
		Args: exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			c, err := s.wharf.Clusters(s.project).Get(ctx, args[0], metav1.GetOptions{})
			if err != nil {
				return s.explain(err, "cluster", args[0], nil)
			}
			// The template gives the labels the cluster runs with; a
			// template out of sight only leaves them out.
			t, _ := s.getTemplateOf(ctx, c)
			return out.printOne(stdio.Out, clusterRecord(c, t))
		}),
	}
	out.register(cmd)
	return cmd
}
