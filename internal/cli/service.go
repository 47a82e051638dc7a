package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/clusterservice"
)

// serviceRunFlags are the flags of `wharf service run` and `start`.
type serviceRunFlags struct {
	opts clusterservice.Options
}

func (f *serviceRunFlags) register(cmd *cobra.Command, all bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.opts.StateDir, "state-dir", clusterservice.DefaultStateDir, "directory for everything the service keeps (server data, hosts, network, kubeconfig, pid file, log)")
	if !all {
		return
	}
	fl.StringVar(&f.opts.Listen, "listen", "", fmt.Sprintf("HTTPS address of the service's API and image registry (default: the first start's, else 0.0.0.0:%d if free, else a free port)", clusterservice.DefaultPort))
	fl.StringVar(&f.opts.ProviderNetwork, "provider-network", "", "the local provider's host network, an IPv4 CIDR; the service has its first address (default: the first start's, else the first free /24 of 10.123.0.0/16; one in use is refused, naming its owner)")
	fl.StringSliceVar(&f.opts.TLSSANs, "tls-san", nil, "extra host names or IPs for the serving certificate")
	fl.BoolVar(&f.opts.NoController, "disable-cluster-controller", false, "serve the API only: clusters are stored but not built (tests)")
	fl.MarkHidden("disable-cluster-controller")
}

func newServiceCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Run the cluster service: an API for clusters, and the controller that builds them",
		Long: `The cluster service is a Wharf server that also serves cluster templates,
clusters and node groups (group wharf.dev/v1; kubectl get clusters works
too) and runs the controller that builds each cluster on hosts its
provider makes: 'local' hosts are network namespaces on this machine
(root), 'ssh' hosts are machines that exist.

  wharf service start    in the background (pid file and log in --state-dir)
  wharf service run      in the foreground, for a process supervisor
  wharf service status   pid, URL and health
  wharf service stop     stop it; the clusters' hosts keep running
                         (--purge: delete every host and the state dir too)

Any number of services run side by side, each with its own state dir:
each claims a provider network, a bridge and a port that no one else on
the machine uses, and its clusters' hosts are cut off from other
clusters' and reach only the service's port on this machine.

Layout of --state-dir: server/ (etcd, certificates, registry), hosts/ (the
local provider's hosts), network.json (the provider network it claimed),
admin.kubeconfig (what 'wharf cluster' uses), service.pid, service.log.`,
		Example: `  sudo wharf service start
  wharf cluster template create k8s-local --coe kubernetes --provider local
  wharf cluster create demo --template k8s-local --node-count 2 --wait
  sudo wharf service stop`,
	}
	cmd.AddCommand(newServiceRunCmd(g, stdio), newServiceStartCmd(g, stdio), newServiceStopCmd(g, stdio), newServiceStatusCmd(stdio),
		newServiceBackupCmd(stdio), newServiceRestoreCmd(g, stdio))
	return cmd
}

func newServiceRunCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the cluster service in the foreground (for systemd and other supervisors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			f.opts.Logger = g.logger(stdio.Err)
			return clusterservice.Run(cmd.Context(), stdio.Err, f.opts)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newServiceStartCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the cluster service in the background and wait until it is ready",
		Long: `Start 'wharf service run' in the background, with its pid in
<state-dir>/service.pid and its log in <state-dir>/service.log, and return
once it answers /readyz. Running it again while the service runs is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			f.opts.LogLevel = g.logLevel
			url, err := clusterservice.Start(cmd.Context(), stdio.Out, f.opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "service ready at %s in %s\n\n", url, since(start))
			if kc, err := filepath.Abs((clusterservice.Options{StateDir: f.opts.StateDir}).Kubeconfig()); err == nil && kc != clusterservice.DefaultKubeconfig() {
				fmt.Fprintf(stdio.Out, "  export %s=%s\n", clusterservice.KubeconfigEnv, kc)
			}
			fmt.Fprintf(stdio.Out, "  wharf cluster template create k8s-local --coe kubernetes --provider local\n  wharf cluster create demo --template k8s-local --wait\n")
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newServiceStopCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	var purge bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the cluster service; clusters' hosts keep running (--purge: remove the service's every trace)",
		Long: `Stop the cluster service. The clusters' hosts keep running and 'wharf
service start' takes them back. With --purge, every host of every cluster
goes too (whatever the cluster's state), then the provider network and
the state dir; what cannot go is named and the state dir stays, so that
running it again finishes the job.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid, err := clusterservice.Stop(f.opts, 30*time.Second)
			if err != nil {
				return err
			}
			if pid == 0 {
				fmt.Fprintln(stdio.Out, "wharf service is not running")
			} else {
				fmt.Fprintf(stdio.Out, "wharf service stopped (pid %d)\n", pid)
			}
			if !purge {
				fmt.Fprintln(stdio.Out, "the clusters' hosts keep running; wharf service start takes them back")
				return nil
			}
			f.opts.Logger = g.logger(stdio.Err)
			return clusterservice.Purge(cmd.Context(), stdio.Out, f.opts)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete every host of every cluster, the provider network and the state dir")
	return cmd
}

func newServiceStatusCmd(stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the cluster service runs: pid, URL and health (fails when it does not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := clusterservice.GetStatus(cmd.Context(), f.opts)
			if err != nil {
				return err
			}
			health := "ok"
			if st.Health != nil {
				health = "not ready: " + shortErr(st.Health)
			}
			network := st.Network
			if network == "" {
				network = "none claimed"
			}
			fmt.Fprintf(stdio.Out, "pid:        %d\nurl:        %s\nhealth:     %s\nnetwork:    %s\nkubeconfig: %s\nlog:        %s\n",
				st.PID, st.URL, health, network, st.Kubeconfig, st.Log)
			if st.Health != nil {
				return fmt.Errorf("wharf service (pid %d) is not ready", st.PID)
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}
