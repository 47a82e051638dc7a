package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
