package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newClusterRecoverCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "recover NAME",
		Short: "Rebuild a cluster's lost etcd quorum from its most up-to-date surviving master",
		Long: `Rebuild the etcd quorum of a cluster of several masters after a majority of
them was lost (health UNHEALTHY, "etcd quorum lost: 1 of 3 members").

The surviving member that applied the most becomes the only member of a new
etcd cluster, keeping all its data; every other master is made again and
joins it, and the cluster ends with as many masters as before. Everything
that member held is there; a write it never saw was never acknowledged.

Refused, with nothing touched, while the quorum is there.`,
		Example: `  wharf cluster show prod | grep health     # etcd=etcd quorum lost: 1 of 3 members
  wharf cluster recover prod --wait`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sf.connect(cmd.Context())
			if err != nil {
				return err
			}
			return s.recoverCluster(cmd.Context(), stdio, args[0], w)
		},
	}
	w.register(cmd, "until the quorum is rebuilt (UPDATE_COMPLETE)")
	return cmd
}

func (s *service) recoverCluster(ctx context.Context, stdio Stdio, name string, w waitFlags) error {
	start := time.Now()
	updated, err := s.updateClusterSpec(ctx, name, func(cs *wharfv1.ClusterSpec) {
		cs.Recover = start.UTC().Format(time.RFC3339Nano)
	})
	if err != nil {
		return err
	}
	if !w.wait {
		fmt.Fprintf(stdio.Out, "Request to recover cluster %s has been accepted.\n", name)
		return nil
	}
	return s.afterClusterUpdate(ctx, stdio, updated, start, w)
}
