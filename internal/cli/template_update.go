package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newTemplateUpdateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "update NAME replace|add|remove ATTRIBUTE[=VALUE]...",
		Short: "Change a cluster template, as openstack coe cluster template update",
		Long: `Change a template's attributes: public, hidden, labels (labels/KEY for
one), cpu, memory, host_cidr, pod_cidr, service_cidr, provider, coe.
While clusters use the template only public and hidden may change.`,
		Example: `  wharf cluster template update k8s-local replace public=true
  wharf cluster template update k8s-local add labels/auto_healing_enabled=true`,
		Args: cobra.MinimumNArgs(3),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			t, err := s.updateTemplate(ctx, args[0], args[1], args[2:])
			if err != nil {
				return err
			}
			return out.printOne(stdio.Out, templateRecord(t, s.project))
		}),
	}
	out.register(cmd)
	return cmd
}

func (s *service) updateTemplate(ctx context.Context, name, op string, items []string) (*wharfv1.ClusterTemplate, error) {
	var out *wharfv1.ClusterTemplate
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		t, err := s.wharf.ClusterTemplates(s.project).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sp := &t.Spec
		str := func(p *string) attr {
			return attr{set: func(v string) error { *p = v; return nil }, remove: func() { *p = "" }}
		}
		if err := applyUpdate(op, items, map[string]attr{
			"public":       {set: func(v string) error { return setBool(&sp.Public, v) }, remove: func() { sp.Public = false }},
			"hidden":       {set: func(v string) error { return setBool(&sp.Hidden, v) }, remove: func() { sp.Hidden = false }},
			"labels":       {labels: &sp.Labels},
			"cpu":          str(&sp.Flavor.CPU),
			"memory":       str(&sp.Flavor.Memory),
			"host_cidr":    str(&sp.Network.HostCIDR),
			"lb_cidr":      str(&sp.Network.LoadBalancerCIDR),
			"pod_cidr":     {set: str(&sp.Network.PodCIDR).set},
			"service_cidr": {set: str(&sp.Network.ServiceCIDR).set},
			"provider":     {set: str(&sp.Provider).set},
			"coe":          {set: str(&sp.COE).set},
		}); err != nil {
			return usageError{err}
		}
		out, err = s.wharf.ClusterTemplates(s.project).Update(ctx, t, metav1.UpdateOptions{})
		return err
	})
	if u := (usageError{}); errors.As(err, &u) {
		return nil, u.error
	}
	return out, s.explain(err, "cluster template", name, templateFlags)
}

// usageError is a mistake in the command line found inside a retried
// update: it goes back to the user as is.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
