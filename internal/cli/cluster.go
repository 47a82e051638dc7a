package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newClusterCmd is `wharf cluster`: Magnum's `openstack coe cluster`
// against the cluster service.
func newClusterCmd(stdio Stdio) *cobra.Command {
	sf := &serviceFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Create, list, resize and delete clusters of the cluster service",
		Long: `Manage clusters of the cluster service (wharf service), as
'openstack coe cluster' manages Magnum's. Each cluster is a Wharf control
plane and its nodes, on hosts the service's provider makes; its API is
Kubernetes', so kubectl drives it (wharf cluster config).

The service is found through --service-kubeconfig, $` + serviceKubeconfigEnv + `, or
the kubeconfig 'wharf service start' writes in ` + defaultServiceStateDir + `.
Clusters live in a project (a namespace of the service): --project.`,
		Example: `  wharf cluster template create k8s-local --coe kubernetes --provider local
  wharf cluster create demo --template k8s-local --node-count 2 --wait
  wharf cluster list
  wharf cluster config demo > demo.kubeconfig && KUBECONFIG=demo.kubeconfig kubectl get nodes
  wharf cluster resize demo 4
  wharf cluster delete demo --wait`,
	}
	sf.register(cmd)
	cmd.AddCommand(newClusterCreateCmd(sf, stdio), newClusterListCmd(sf, stdio), newClusterShowCmd(sf, stdio),
		newClusterDeleteCmd(sf, stdio), newClusterUpdateCmd(sf, stdio), newClusterResizeCmd(sf, stdio),
		newClusterConfigCmd(sf, stdio), newClusterRecoverCmd(sf, stdio), newTemplateCmd(sf, stdio), newClusterBackupCmd(sf, stdio))
	return cmd
}

// exactArgs is cobra.ExactArgs with the arguments' names in the error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s wants %s (see --help)", cmd.CommandPath(), names)
		}
		return nil
	}
}
