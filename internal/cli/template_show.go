package cli

import (
	"context"

	"github.com/spf13/cobra"
)

func newTemplateShowCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a cluster template (NAME, or PROJECT/NAME of a public one)",
		Args:  exactArgs(1, "NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			t, err := s.getTemplate(ctx, args[0])
			if err != nil {
				return err
			}
			return out.printOne(stdio.Out, templateRecord(t, s.project))
		}),
	}
	out.register(cmd)
	return cmd
}
