package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/simnode"
)

func newSimNodesCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	var kubeconfig string
	cfg := simnode.Config{}
	cmd := &cobra.Command{
		Use:   "sim-nodes",
		Short: "Register simulated nodes that report their pods as running (no containers)",
		Long: `Register simulated nodes and keep them alive until interrupted.

Each node renews its Lease, reports every pod bound to it as Running and
Ready (with a made-up pod IP), and finishes pod deletions at once. Nothing
runs: this is for demos and benchmarks of the control plane, like
Kubernetes' kwok. Real hosts run 'wharf agent'.`,
		Example: `  wharf sim-nodes --kubeconfig /tmp/w1/admin.kubeconfig --count 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := clientFor(kubeconfig)
			if err != nil {
				return err
			}
			return simnode.Run(cmd.Context(), g.logger(stdio.Err), client, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
	f.IntVar(&cfg.Count, "count", 2, "number of nodes")
	f.StringVar(&cfg.Prefix, "prefix", "sim", "node name prefix: <prefix>-0, <prefix>-1, ...")
	f.StringVar(&cfg.CPU, "cpu", "4", "CPU capacity of each node")
	f.StringVar(&cfg.Memory, "memory", "8Gi", "memory capacity of each node")
	f.IntVar(&cfg.Pods, "pods", 110, "pod capacity of each node")
	return cmd
}

// clientFor returns a client for a kubeconfig file.
func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	if kubeconfig == "" {
		return nil, fmt.Errorf("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	rc.QPS, rc.Burst = 500, 1000
	return kubernetes.NewForConfig(rc)
}
