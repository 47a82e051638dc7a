package cli

import (
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/wire"
)

type templateOptions struct {
	spec   wharfv1.ClusterTemplateSpec
	ssh    wharfv1.SSHHosts
	labels []string
}

func newTemplateCreateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	o := &templateOptions{}
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "create NAME --coe kubernetes [--provider local|ssh]",
		Short: "Create a cluster template",
		Example: `  wharf cluster template create k8s-local --coe kubernetes --provider local --cpu 2 --memory 4Gi
  wharf cluster template create k8s-lab --coe kubernetes --provider ssh \
      --ssh-host 192.0.2.10 --ssh-host 192.0.2.11 --ssh-key-secret lab-key --public`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabels(o.labels)
			if err != nil {
				return err
			}
			s, err := sf.connect(cmd.Context())
			if err != nil {
				return err
			}
			t := &wharfv1.ClusterTemplate{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: s.project}, Spec: o.spec}
			t.Spec.Labels = labels
			if len(o.ssh.Hosts) > 0 || o.ssh.KeySecret != "" {
				t.Spec.SSH = &o.ssh
			}
			created, err := s.wharf.ClusterTemplates(s.project).Create(cmd.Context(), t, metav1.CreateOptions{})
			if err != nil {
				return s.explain(err, "cluster template", args[0], templateFlags)
			}
			return out.printOne(stdio.Out, templateRecord(created, s.project))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.spec.COE, "coe", "", "container orchestration engine: kubernetes (required)")
	f.StringVar(&o.spec.Provider, "provider", "local", "what makes the hosts: local or ssh")
	f.StringVar(&o.spec.Flavor.CPU, "cpu", "", "CPU limit of each host, e.g. 2 or 500m (default: none)")
	f.StringVar(&o.spec.Flavor.Memory, "memory", "", "memory limit of each host, e.g. 4Gi (default: none)")
	f.StringVar(&o.spec.Network.HostCIDR, "host-cidr", "", "hosts' addresses, inside the service's provider network (default: any free one)")
	f.StringVar(&o.spec.Network.LoadBalancerCIDR, "lb-cidr", "", "pool of LoadBalancer service addresses on the provider network; each cluster gets a /28 of it (default: the local provider's top quarter of its network)")
	f.StringVar(&o.spec.Network.PodCIDR, "pod-cidr", wire.DefaultClusterCIDR, "pods' addresses")
	f.StringVar(&o.spec.Network.ServiceCIDR, "service-cidr", wire.DefaultServiceCIDR, "services' cluster IPs")
	f.StringVar(&o.spec.Network.DNSNameserver, "dns-nameserver", "", `resolver the nodes' DNS forwards names outside the cluster to: an IPv4 address, or "none" (default: the hosts' /etc/resolv.conf)`)
	f.StringArrayVar(&o.ssh.Hosts, "ssh-host", nil, "a machine of the ssh provider, host or host:port (repeatable)")
	f.StringVar(&o.ssh.User, "ssh-user", "", "ssh user (default root)")
	f.StringVar(&o.ssh.KeySecret, "ssh-key-secret", "", "Secret of the project whose ssh-privatekey key holds the ssh key")
	f.StringVar(&o.ssh.KnownHostsSecret, "ssh-known-hosts-secret", "", "Secret whose known_hosts key pins the machines' host keys")
	f.StringArrayVar(&o.labels, "labels", nil, "labels of the clusters, key=value[,key=value...] (repeatable)")
	f.BoolVar(&o.spec.Public, "public", false, "every project may use the template")
	f.BoolVar(&o.spec.Hidden, "hidden", false, "leave the template out of lists unless --hidden")
	out.register(cmd)
	return cmd
}
