package cli

import (
	"context"

	"github.com/spf13/cobra"
)

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
