package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/controllers/nodeipam"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/leaderelect"
	"wharf.dev/wharf/internal/wire"
)

func newServerCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := controlplane.Options{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a control plane: Kubernetes-compatible API, etcd, scheduler and controllers",
		Long: `Run a Wharf control plane in the foreground.

On first start it makes a CA, a serving certificate and tokens in --data-dir,
and writes:
  <data-dir>/admin.kubeconfig   for kubectl (export KUBECONFIG=...)
  <data-dir>/join-token         for agents joining the cluster

Storage is an etcd member embedded in this process (data in <data-dir>/etcd)
unless --etcd-servers names an external cluster.

Several masters: each runs a server with --etcd-peer-address and the same CA,
service-account key and tokens; the first starts a cluster, the others name it
with --join and their members join as learners, promoted once caught up. The
server whose member leads etcd holds --vip, the cluster's API address
(docs/ha.md).`,
		Example: `  wharf server --data-dir /tmp/w1 --listen 127.0.0.1:6443 &
  export KUBECONFIG=/tmp/w1/admin.kubeconfig
  kubectl get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DataDir == "" {
				return fmt.Errorf("--data-dir is required")
			}
			o.Logger = g.logger(stdio.Err)
			tuneGC()
			for {
				s, err := controlplane.Start(cmd.Context(), o)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdio.Err, "wharf server ready at %s\nexport KUBECONFIG=%s\n", s.URL, s.AdminKubeconfig)
				// A member made the only one of a new cluster (quorum
				// recovery) starts again in this process.
				if err := s.Wait(cmd.Context()); !errors.Is(err, controlplane.ErrRestart) {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "directory for certificates, tokens, kubeconfig and etcd data (required)")
	f.StringVar(&o.Listen, "listen", controlplane.DefaultListen, "HTTPS listen address")
	f.StringVar(&o.AdvertiseAddress, "advertise-address", "", "address other hosts use to reach this server (default: the listen address, or 127.0.0.1)")
	f.StringSliceVar(&o.TLSSANs, "tls-san", nil, "extra host names or IPs for the serving certificate")
	f.StringSliceVar(&o.EtcdServers, "etcd-servers", nil, "external etcd endpoints (default: embedded etcd)")
	f.StringVar(&o.EtcdPeerAddress, "etcd-peer-address", "", "host:port where the embedded etcd member meets its peers, with TLS from the cluster CA (clients: the port below); makes this server one master of several")
	f.StringVar(&o.EtcdName, "etcd-name", "", "name of the embedded etcd member (default: the host of --etcd-peer-address)")
	f.StringSliceVar(&o.Join, "join", nil, "API URLs of the cluster's running servers: on a first start the etcd member joins their cluster (with --etcd-peer-address)")
	f.DurationVar(&o.EtcdElectionTimeout, "etcd-election-timeout", 0, "how long etcd members wait for a silent leader before electing another (default 500ms)")
	f.StringVar(&o.VIP, "vip", "", "the cluster's API address: the server whose etcd member leads adds it to its interface and announces it (with --etcd-peer-address)")
	f.StringVar(&o.EtcdTLS.CAFile, "etcd-cafile", "", "CA bundle that signed the external etcd's serving certificates (default: system roots)")
	f.StringVar(&o.EtcdTLS.CertFile, "etcd-certfile", "", "client certificate presented to the external etcd")
	f.StringVar(&o.EtcdTLS.KeyFile, "etcd-keyfile", "", "key of --etcd-certfile")
	f.DurationVar(&o.NodeGracePeriod, "node-grace-period", 0, "how long a node may miss lease renewals before it is marked unreachable (default 5s)")
	f.DurationVar(&o.EvictionTimeout, "eviction-timeout", 0, "how long pods stay on an unreachable node before eviction (default 3s)")
	f.DurationVar(&o.MetricsInterval, "metric-resolution", 0, "how often nodes' resource usage is scraped for metrics.k8s.io (default 15s)")
	f.DurationVar(&o.HPASyncPeriod, "horizontal-pod-autoscaler-sync-period", 0, "how often each HorizontalPodAutoscaler is evaluated (default 15s)")
	f.DurationVar(&o.HPADownscaleStabilization, "horizontal-pod-autoscaler-downscale-stabilization", 0, "scale-down window of HorizontalPodAutoscalers whose behavior sets none (default 5m)")
	f.DurationVar(&o.CompactionInterval, "compaction-interval", controlplane.DefaultCompactionInterval, "how often etcd history is compacted")
	f.StringVar(&o.ServiceCIDR, "service-cidr", wire.DefaultServiceCIDR, "range of service cluster IPs")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", wire.DefaultClusterCIDR, "range of pod IPs: each node gets a block of it as spec.podCIDR")
	f.IntVar(&o.NodeCIDRMaskSize, "node-cidr-mask-size", nodeipam.DefaultMaskSize, "prefix length of each node's pod CIDR")
	f.StringSliceVar(&o.LoadBalancerPool, "lb-cidr", nil, "CIDRs LoadBalancer services get addresses from (repeat or comma-separate); none: such services stay pending")
	f.BoolVar(&o.DisableControllers, "disable-controllers", false, "serve the API only: no scheduler or controllers")
	f.DurationVar(&o.LeaderElectLeaseDuration, "leader-elect-lease-duration", leaderelect.DefaultLeaseDuration, "how long the controllers' lease lasts unrenewed: another server takes over the scheduler and controllers this long after their leader's last renewal")
	f.DurationVar(&o.LeaderElectRenewDeadline, "leader-elect-renew-deadline", leaderelect.DefaultRenewDeadline, "how long the leader retries renewing before it stops its controllers; its writes are refused this long after its last renewal")
	f.DurationVar(&o.LeaderElectRetryPeriod, "leader-elect-retry-period", leaderelect.DefaultRetryPeriod, "how often the lease is renewed, or sought by the other servers")
	f.StringVar(&o.Authorization, "authorization", "rbac", "rbac: RBAC and the Node authorizer decide every request; none: every authenticated user may do anything (for benchmarks and single-user experiments)")
	f.BoolVar(&o.UnsafeNoFsync, "unsafe-no-fsync", false, "do not fsync etcd writes (tests only: a crash loses acknowledged writes)")
	f.MarkHidden("unsafe-no-fsync")
	f.StringVar(&o.RestoreFrom, "restore-from", "", "etcd snapshot to restore on the first start (no etcd data yet in --data-dir); ignored once restored")
	f.StringVar(&o.RestoreSHA256, "restore-sha256", "", "expected sha256 of the --restore-from file")
	return cmd
}
