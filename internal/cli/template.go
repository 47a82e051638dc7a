package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/wire"
)

var templateListColumns = []string{"uuid", "name", "coe", "provider", "public"}

var templateFlags = map[string]string{
	"spec.coe": "--coe", "spec.provider": "--provider", "spec.flavor.cpu": "--cpu", "spec.flavor.memory": "--memory",
	"spec.network.hostCIDR": "--host-cidr", "spec.network.podCIDR": "--pod-cidr", "spec.network.serviceCIDR": "--service-cidr",
	"spec.network.dnsNameserver": "--dns-nameserver",
	"spec.ssh":                   "--ssh-host", "spec.ssh.hosts": "--ssh-host", "spec.ssh.keySecret": "--ssh-key-secret", "spec.labels": "--labels",
}

func newTemplateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Manage cluster templates: what a cluster is made of",
		Long: `A cluster template says how clusters are built (openstack coe cluster
template): the orchestrator (--coe kubernetes), the provider of hosts
(local: network namespaces on the service's machine; ssh: machines that
exist), each host's CPU and memory, the networks and labels. Templates
belong to a project; --public ones can be used from every project as
PROJECT/NAME. A template clusters use cannot be deleted, and only its
public and hidden attributes change.`,
	}
	cmd.AddCommand(newTemplateCreateCmd(sf, stdio), newTemplateListCmd(sf, stdio), newTemplateShowCmd(sf, stdio),
		newTemplateDeleteCmd(sf, stdio), newTemplateUpdateCmd(sf, stdio))
	return cmd
}

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
	f.StringVar(&o.spec.Network.PodCIDR, "pod-cidr", wire.DefaultClusterCIDR, "pods' addresses")
	f.StringVar(&o.spec.Network.ServiceCIDR, "service-cidr", wire.DefaultServiceCIDR, "services' cluster IPs")
	f.StringVar(&o.spec.Network.DNSNameserver, "dns-nameserver", "", `resolver of the pods for names outside the cluster: an IPv4 address, or "none" (default: the hosts' /etc/resolv.conf)`)
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

func newTemplateDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete cluster templates no cluster uses",
		Args:  cobra.MinimumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			var errs []error
			for _, name := range args {
				if err := s.wharf.ClusterTemplates(s.project).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
					errs = append(errs, s.explain(err, "cluster template", name, nil))
					continue
				}
				fmt.Fprintf(stdio.Out, "Request to delete cluster template %s has been accepted.\n", name)
			}
			return errors.Join(errs...)
		}),
	}
}

// getTemplate reads a template by reference: NAME in the project, or
// PROJECT/NAME of a public one.
func (s *service) getTemplate(ctx context.Context, ref string) (*wharfv1.ClusterTemplate, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		ns, name = s.project, ref
	}
	t, err := s.wharf.ClusterTemplates(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && ns != s.project && !t.Spec.Public) {
		return nil, fmt.Errorf("cluster template %q not found in project %q: see `wharf cluster template list`", ref, s.project)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster template %q: %w", ref, err)
	}
	return t, nil
}

// getTemplateOf reads a cluster's template.
func (s *service) getTemplateOf(ctx context.Context, c *wharfv1.Cluster) (*wharfv1.ClusterTemplate, error) {
	ns, name := resources.TemplateRef(c)
	return s.wharf.ClusterTemplates(ns).Get(ctx, name, metav1.GetOptions{})
}

// templateRecord shows a template seen from project: another project's
// (public) one is named PROJECT/NAME, the way clusters refer to it.
func templateRecord(t *wharfv1.ClusterTemplate, project string) record {
	name := t.Name
	if t.Namespace != project {
		name = t.Namespace + "/" + t.Name
	}
	ssh := t.Spec.SSH
	if ssh == nil {
		ssh = &wharfv1.SSHHosts{}
	}
	return record{
		{"uuid", string(t.UID)},
		{"name", name},
		{"project_id", t.Namespace},
		{"coe", t.Spec.COE},
		{"provider", t.Spec.Provider},
		{"cpu", t.Spec.Flavor.CPU},
		{"memory", t.Spec.Flavor.Memory},
		{"host_cidr", t.Spec.Network.HostCIDR},
		{"pod_cidr", t.Spec.Network.PodCIDR},
		{"service_cidr", t.Spec.Network.ServiceCIDR},
		{"dns_nameserver", t.Spec.Network.DNSNameserver},
		{"ssh_hosts", ssh.Hosts},
		{"ssh_user", ssh.User},
		{"ssh_key_secret", ssh.KeySecret},
		{"labels", t.Spec.Labels},
		{"public", t.Spec.Public},
		{"hidden", t.Spec.Hidden},
		{"created_at", timestamp(&t.CreationTimestamp)},
	}
}

func setBool(p *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", v)
	}
	*p = b
	return nil
}
