package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/controlplane"
)

func newVersionCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the Kubernetes API version served",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(stdio.Out, "wharf %s (Kubernetes API %s.%s)\n", controlplane.Version.GitVersion, controlplane.Version.Major, controlplane.Version.Minor)
			return nil
		},
	}
}
