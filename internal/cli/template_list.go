package cli

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newTemplateListCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	var hidden bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the templates the project can use: its own and public ones (PROJECT/NAME)",
		Args:  cobra.NoArgs,
		RunE: sf.withService(func(ctx context.Context, s *service, _ []string) error {
			list, err := s.wharf.ClusterTemplates("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return s.explain(err, "cluster template", "", nil)
			}
			var rs []record
			for i := range list.Items {
				t := &list.Items[i]
				if (t.Namespace == s.project || t.Spec.Public) && (hidden || !t.Spec.Hidden) {
					rs = append(rs, templateRecord(t, s.project))
				}
			}
			return out.printList(stdio.Out, rs, templateListColumns)
		}),
	}
	cmd.Flags().BoolVar(&hidden, "hidden", false, "also list hidden templates")
	out.register(cmd)
	return cmd
}
