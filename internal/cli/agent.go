package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/agent"
	"wharf.dev/wharf/internal/agent/stream"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/wire"
)

func newAgentCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	cfg := agent.Config{}
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node: join a cluster and run the pods bound to this host",
		Long: `Run a Wharf node agent in the foreground, what the kubelet and kube-proxy
are to Kubernetes.

On first start the agent joins the cluster with the join token the server
wrote to <server data-dir>/join-token ("wharf1.<CA hash>.<secret>"): it
fetches the cluster CA from the server and checks it against the hash, then
trades the secret for a node token and a serving certificate, kept in
<state-dir>/agent/. Later starts reuse them, and join again only if the
server stopped accepting them.

It then starts containerd with a configuration of its own under
<state-dir>/containerd (or adopts the one a previous agent started; with
--containerd-socket it uses an existing containerd instead), registers the
Node, renews its Lease every second, writes the CNI configuration once the
server assigns the node a pod CIDR, runs the pods bound to the node, and
serves their logs and exec on --listen to the API server (which must present
a client certificate from the cluster CA).

Stopping the agent leaves containerd and the pods running: a new agent
adopts them.`,
		Example: `  wharf agent --server https://10.0.0.1:6443 --token-file /tmp/w1/join-token \
    --state-dir /var/lib/wharf/agent --node-name node-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenFile != "" {
				if cfg.Token != "" {
					return errors.New("--token and --token-file exclude each other")
				}
				data, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				cfg.Token = strings.TrimSpace(string(data))
			}
			if cfg.ServerURL == "" || cfg.Token == "" {
				return errors.New("--server and --token (or --token-file) are required")
			}
			cfg.Logger = g.logger(stdio.Err)
			cfg.Version = controlplane.Version.GitVersion
			return agent.Run(cmd.Context(), cfg)
		},
	}
	hostname, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&cfg.ServerURL, "server", "", "URL of the cluster's server, e.g. https://10.0.0.1:6443 (required)")
	f.StringVar(&cfg.Token, "token", "", "join token: wharf1.<sha256 of the CA>.<secret>")
	f.StringVar(&tokenFile, "token-file", "", "file holding the join token (the server's <data-dir>/join-token)")
	f.StringVar(&cfg.CAFile, "ca-file", "", "trust this cluster CA instead of fetching it (a bare secret will then do as token)")
	f.StringVar(&cfg.StateDir, "state-dir", agent.DefaultStateDir, "directory for credentials, containerd, CNI state, pod volumes and logs")
	f.StringVar(&cfg.NodeName, "node-name", strings.ToLower(hostname), "name of the Node")
	f.StringVar(&cfg.NodeIP, "node-ip", "", "address the server reaches this node at (default: the address of the interface with the default route)")
	f.StringVar(&cfg.Listen, "listen", stream.DefaultListen, "HTTPS address serving logs and exec to the server")
	f.StringVar(&cfg.ContainerdSocket, "containerd-socket", "", "use the containerd at this socket (default: start one for this node)")
	f.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "", "where to write the CNI config (default <state-dir>/"+wire.CNIConfDir+", or "+agent.DefaultExternalCNIConfDir+" with --containerd-socket)")
	f.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "where containerd runs CNI plugins from, and wharf-cni goes (default <state-dir>/cni/bin, or "+agent.DefaultExternalCNIBinDir+" with --containerd-socket)")
	f.StringVar(&cfg.CgroupRoot, "cgroup-root", "", "cgroup of containerd and the pods (default /wharf/<node-name>)")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", wire.DefaultClusterCIDR, "range of all pods' addresses, as the server's --cluster-cidr")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", wire.DefaultServiceCIDR, "range of the cluster's service addresses, as the server's --service-cidr")
	f.StringVar(&cfg.CNIBridge, "cni-bridge", cni.DefaultBridge, "the pods' bridge (agents sharing a network namespace each need their own)")
	f.StringVar(&cfg.ResolvConf, "resolv-conf", agent.DefaultResolvConf, `resolver configuration of pods with dnsPolicy Default, and the upstreams of the node's DNS for names outside the cluster ("": none)`)
	f.StringSliceVar(&cfg.ClusterDNS, "cluster-dns", nil, "DNS servers of pods with dnsPolicy ClusterFirst (default: the agent's own, at the pods' gateway address)")
	f.StringVar(&cfg.ClusterDomain, "cluster-domain", wire.DefaultClusterDomain, "the cluster's DNS domain")
	f.StringVar(&cfg.IngressHTTP, "ingress-http", ":80", `where the node's ingress proxy serves HTTP ("-": nowhere)`)
	f.StringVar(&cfg.IngressHTTPS, "ingress-https", ":443", `where the node's ingress proxy serves HTTPS ("-": nowhere)`)
	f.BoolVar(&cfg.LoadBalancerLocal, "lb-local", false, "hold load balancer addresses on lo, unannounced: they answer on this machine only (wharf up)")
	f.StringVar(&cfg.RegistryURL, "registry-url", "", "pull registry.wharf.local images from this registry (https://host:port) instead of the cluster's server")
	f.StringVar(&cfg.RegistryCAFile, "registry-ca-file", "", "CA certificate (PEM) of --registry-url (default: the system roots)")
	f.StringVar(&cfg.RegistryTokenFile, "registry-token-file", "", "file holding the bearer token sent to --registry-url")
	return cmd
}
