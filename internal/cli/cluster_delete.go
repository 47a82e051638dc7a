package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newClusterDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete clusters and every host they have",
		Long: `Delete clusters: the controller removes their hosts, then the cluster
object goes (DELETE_IN_PROGRESS until then). A cluster being created
(CREATE_IN_PROGRESS) cannot be deleted until it is CREATE_COMPLETE or
CREATE_FAILED.`,
		Example: `  wharf cluster delete demo --wait`,
		Args:    cobra.MinimumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			return s.deleteClusters(ctx, stdio, args, w)
		}),
	}
	w.register(cmd, "until the clusters and their hosts are gone")
	return cmd
}

func (s *service) deleteClusters(ctx context.Context, stdio Stdio, names []string, w waitFlags) error {
	start := time.Now()
	var errs []error
	var accepted []string
	for _, name := range names {
		if err := s.wharf.Clusters(s.project).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			errs = append(errs, s.explain(err, "cluster", name, nil))
			continue
		}
		accepted = append(accepted, name)
		fmt.Fprintf(stdio.Out, "Request to delete cluster %s has been accepted.\n", name)
	}
	for _, name := range accepted {
		if !w.wait {
			break
		}
		p := &progress{out: stdio.Out, start: start, skipOld: true, quiet: len(accepted) > 1}
		if err := s.waitClusterGone(ctx, name, w.timeoutOr(defaultWaitTimeout), p); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdio.Out, "Cluster %s deleted in %s\n", name, since(start))
	}
	return errors.Join(errs...)
}
