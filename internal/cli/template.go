package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

var templateListColumns = []string{"uuid", "name", "coe", "provider", "public"}

var templateFlags = map[string]string{
	"spec.coe": "--coe", "spec.provider": "--provider", "spec.flavor.cpu": "--cpu", "spec.flavor.memory": "--memory",
	"spec.network.hostCIDR": "--host-cidr", "spec.network.podCIDR": "--pod-cidr", "spec.network.serviceCIDR": "--service-cidr", "spec.network.loadBalancerCIDR": "--lb-cidr",
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
		{"lb_cidr", t.Spec.Network.LoadBalancerCIDR},
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
