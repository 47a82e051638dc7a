package cli

import (
	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/provider/ssh/hostctl"
)

// newHostctlCmd is the machine-side half of the ssh provider, which runs
// it over ssh on the machines it manages; hidden, as no person needs it.
// hostctl parses its own flags, so that the provider's tests can run the
// same code from a test binary standing in for wharf.
func newHostctlCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:                "hostctl COMMAND --dir DIR [--cgroup-root ROOT]",
		Short:              "Run, stop and remove a cluster host on this machine (used by the ssh provider)",
		Long:               hostctl.Usage,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostctl.Main(cmd.Context(), args, stdio.Err)
		},
	}
}
