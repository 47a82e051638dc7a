package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newTemplateDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete cluster templates no cluster uses",
		Args:  cobra.MinimumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			var errs []error
			for _, name := range args {
				if err := s.wharf.ClusterTemplates(s.project).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
					errs = append(errs, s.explain(err, "cluster template", name, nil))
					continue
				}
				fmt.Fprintf(stdio.Out, "Request to delete cluster template %s has been accepted.\n", name)
			}
			return errors.Join(errs...)
		}),
	}
}
