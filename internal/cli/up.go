package cli

import (
	"context"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/agent"
	"wharf.dev/wharf/internal/up"
	"wharf.dev/wharf/internal/wire"
)

const defaultStateDir = "/var/lib/wharf"

func newUpCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := up.Options{}
	var foreground bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a one-node cluster on this machine (root): server, agent and containerd",
		Long: `Start a Wharf cluster on this machine, or check that it runs and start
what is missing (running it again is harmless).

The server and the agent run in the background with pid files under
<state-dir>/run and logs under <state-dir>/log; the agent starts containerd.
Several state dirs run side by side: the first run of each chooses ranges,
ports, a bridge and a cgroup that no one else on this machine uses and
records them in <state-dir>/cluster.json.
The built-in images (pause, testapp, busybox; 'make build' makes them) are
pushed to the cluster's registry. wharf up returns once the node is Ready and
prints the kubeconfig to use; 'wharf up config' prints it, or with --user
one of a user's client certificate. Needs root and the Debian packages
containerd, runc and iptables (crun, when installed, runs the containers).`,
		Example: `  sudo wharf up
  export KUBECONFIG=/var/lib/wharf/server/admin.kubeconfig
  kubectl apply -f examples/hello/
  sudo wharf down --purge`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.logger(stdio.Err)
			if err := up.Up(cmd.Context(), stdio.Out, o); err != nil {
				return err
			}
			if !foreground {
				return nil
			}
			// Attached: the server's and the agent's logs until Ctrl-C,
			// then the cluster stops (its data stays).
			up.Follow(cmd.Context(), stdio.Out, o)
			return up.Down(context.WithoutCancel(cmd.Context()), stdio.Out, o, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.StateDir, "state-dir", defaultStateDir, "directory for everything the cluster keeps")
	f.StringVar(&o.Listen, "listen", "", "the server's HTTPS address (default: the first run's, else 127.0.0.1:6443 if free, else a free port)")
	f.StringVar(&o.NodeName, "node-name", "", "the node's name (default: the host name)")
	f.StringVar(&o.NodeIP, "node-ip", "", "the node's address (default: the address of the interface with the default route)")
	f.StringVar(&o.IngressHTTP, "ingress-http", "", "where the ingress proxy serves HTTP (default: the first run's, else 0.0.0.0:80 if free, else a free port)")
	f.StringVar(&o.IngressHTTPS, "ingress-https", "", "where the ingress proxy serves HTTPS (default: the first run's, else 0.0.0.0:443 if free, else a free port)")
	f.StringVar(&o.AgentListen, "agent-listen", "", "the agent's HTTPS address for logs and exec (default: the first run's, else 0.0.0.0:10250 if free, else a free port)")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", "", "the pods' range (default: the first run's, else "+wire.DefaultClusterCIDR+" if free, else a free /16)")
	f.StringVar(&o.ServiceCIDR, "service-cidr", "", "the services' range (default: the first run's, else "+wire.DefaultServiceCIDR+" if free, else a free /16)")
	f.StringVar(&o.LoadBalancerCIDR, "lb-cidr", "", "LoadBalancer services' addresses, answering on this machine only (default: the first run's, else a free /28 of 10.200.0.0/16)")
	f.StringVar(&o.ResolvConf, "resolv-conf", agent.DefaultResolvConf, `resolver configuration of pods with dnsPolicy Default, and the upstreams of the node's DNS for names outside the cluster ("": none)`)
	f.StringVar(&o.ImagesDir, "images", "", "directory of the built-in image tarballs (default: images/ next to the wharf binary)")
	f.BoolVar(&foreground, "foreground", false, "stay attached, showing the server's and agent's logs; stop the cluster (keeping its data) on Ctrl-C")
	cmd.AddCommand(newUpConfigCmd(stdio))
	return cmd
}

func newUpConfigCmd(stdio Stdio) *cobra.Command {
	var stateDir, file string
	var uf userFlags
	cmd := &cobra.Command{
		Use:   "config [--user USER [--group GROUP]...]",
		Short: "Print a kubeconfig of the cluster wharf up runs (admin, or a user's certificate)",
		Long: `Print the admin's kubeconfig of the cluster in --state-dir
(<state-dir>/server/admin.kubeconfig, readable by whoever ran wharf up).

With --user, the kubeconfig is a user's instead: a key is made here, a
CertificateSigningRequest for it (common name the user, organizations the
--group values) is created and approved with the admin's credentials, and
the server signs it with the cluster's CA. The user may do what RBAC
bindings of the user or its groups allow: nothing until some exist.
system:masters is refused: bind cluster-admin instead.`,
		Example: `  sudo wharf up config --user alice --group devs --output-file alice.kubeconfig
  sudo chown $USER alice.kubeconfig
  sudo kubectl --kubeconfig /var/lib/wharf/server/admin.kubeconfig create clusterrolebinding devs-view --clusterrole view --group devs
  KUBECONFIG=alice.kubeconfig kubectl auth whoami`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := uf.request("WharfUpConfig")
			if err != nil {
				return err
			}
			data, err := up.Kubeconfig(cmd.Context(), stateDir, r)
			if err != nil {
				return err
			}
			return writeKubeconfig(stdio, file, data)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir, "the cluster's state directory")
	cmd.Flags().StringVar(&file, "output-file", "", "write the kubeconfig to this file (mode 0600) instead of standard output")
	uf.register(cmd)
	return cmd
}

func newDownCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := up.Options{}
	var purge bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster wharf up started; --purge also removes its data and every trace",
		Long: `Stop the agent, every pod, containerd and the server of the cluster in
--state-dir. Its data stays, so wharf up brings the same cluster back; with
--purge the state dir, mounts, cgroups, the pods' bridge, iptables rules and
routes go too, and nothing is left behind; what cannot go is named and the
state dir stays, so that running it again finishes the job.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.logger(stdio.Err)
			return up.Down(cmd.Context(), stdio.Out, o, purge)
		},
	}
	cmd.Flags().StringVar(&o.StateDir, "state-dir", defaultStateDir, "the cluster's state directory")
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove all data and every trace (mounts, cgroups, bridge, iptables rules)")
	return cmd
}
