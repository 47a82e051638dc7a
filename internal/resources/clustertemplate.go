package resources

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/wire"
)

// Values of a template's fields.
const (
	COEKubernetes = "kubernetes"
	ProviderLocal = "local"
	ProviderSSH   = "ssh"
)

var (
	supportedCOEs      = []string{COEKubernetes}
	supportedProviders = []string{ProviderLocal, ProviderSSH}
)

// ClusterTemplates is wharf.dev/v1 clustertemplates.
func ClusterTemplates() *Resource {
	return &Resource{
		GVR:            wharfv1.SchemeGroupVersion.WithResource("clustertemplates"),
		Kind:           "ClusterTemplate",
		SingularName:   "clustertemplate",
		Namespaced:     true,
		ShortNames:     []string{"ctpl"},
		Categories:     []string{"wharf"},
		New:            func() runtime.Object { return &wharfv1.ClusterTemplate{} },
		NewList:        func() runtime.Object { return &wharfv1.ClusterTemplateList{} },
		Default:        typed(defaultClusterTemplate),
		Validate:       typedValidate(validateClusterTemplate),
		Admit:          admitClusterTemplate,
		ValidateDelete: validateClusterTemplateDelete,
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "COE", Type: "string", Description: "The container orchestration engine."},
			{Name: "Provider", Type: "string", Description: "What makes the hosts: local or ssh."},
			{Name: "Public", Type: "string", Description: "Whether every project may use the template."},
			ageColumn,
		},
		Row: typedRowNow(clusterTemplateRow),
		Fields: typedFields(func(t *wharfv1.ClusterTemplate) fields.Set {
			return fields.Set{"spec.coe": t.Spec.COE, "spec.provider": t.Spec.Provider}
		}),
	}
}

// defaultClusterTemplate fills the provider and the pod and service
// networks; the COE has no default: a template says what it builds.
func defaultClusterTemplate(t *wharfv1.ClusterTemplate) {
	s := &t.Spec
	if s.Provider == "" {
		s.Provider = ProviderLocal
	}
	if s.Network.PodCIDR == "" {
		s.Network.PodCIDR = wire.DefaultClusterCIDR
	}
	if s.Network.ServiceCIDR == "" {
		s.Network.ServiceCIDR = wire.DefaultServiceCIDR
	}
	if s.SSH != nil && s.SSH.User == "" {
		s.SSH.User = "root"
	}
}

func validateClusterTemplate(t *wharfv1.ClusterTemplate) field.ErrorList {
	errs := validateMeta(&t.ObjectMeta, true, nameIsDNSSubdomain)
	p := field.NewPath("spec")
	s := &t.Spec
	switch {
	case s.COE == "":
		errs = append(errs, field.Required(p.Child("coe"), `supported values: "kubernetes"`))
	case !oneOf(s.COE, supportedCOEs...):
		errs = append(errs, field.NotSupported(p.Child("coe"), s.COE, supportedCOEs))
	}
	switch {
	case s.Provider == "":
		errs = append(errs, field.Required(p.Child("provider"), ""))
	case !oneOf(s.Provider, supportedProviders...):
		errs = append(errs, field.NotSupported(p.Child("provider"), s.Provider, supportedProviders))
	}
	errs = append(errs, validateFlavor(s.Flavor, p.Child("flavor"))...)
	errs = append(errs, validateNetwork(s.Network, p.Child("network"))...)
	sp := p.Child("ssh")
	switch {
	case s.Provider == ProviderSSH && s.SSH == nil:
		errs = append(errs, field.Required(sp, "the ssh provider needs the machines' addresses and a key Secret"))
	case s.Provider != ProviderSSH && s.SSH != nil:
		errs = append(errs, field.Forbidden(sp, "only for provider ssh"))
	case s.SSH != nil:
		errs = append(errs, validateSSHHosts(s.SSH, sp)...)
	}
	return append(errs, validateMagnumLabels(s.Labels, p.Child("labels"))...)
}

func validateFlavor(f wharfv1.Flavor, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, q := range []struct{ name, v string }{{"cpu", f.CPU}, {"memory", f.Memory}} {
		if q.v == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.v)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p.Child(q.name), q.v, "must be a quantity, e.g. \"2\" or \"500m\" CPUs, \"4Gi\" of memory"))
		case v.Sign() <= 0:
			errs = append(errs, field.Invalid(p.Child(q.name), q.v, "must be greater than 0"))
		}
	}
	return errs
}

// validateNetwork checks that each range parses and that they do not
// overlap: pods, services and hosts must be told apart by address.
func validateNetwork(n wharfv1.Network, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	type cidr struct {
		name string
		v    string
		pfx  netip.Prefix
	}
	var parsed []cidr
	for _, c := range []cidr{{name: "hostCIDR", v: n.HostCIDR}, {name: "podCIDR", v: n.PodCIDR}, {name: "serviceCIDR", v: n.ServiceCIDR}, {name: "loadBalancerCIDR", v: n.LoadBalancerCIDR}} {
		if c.v == "" {
			if c.name != "hostCIDR" && c.name != "loadBalancerCIDR" {
				errs = append(errs, field.Required(p.Child(c.name), ""))
			}
			continue
		}
		pfx, err := netip.ParsePrefix(c.v)
		switch {
		case err != nil || !pfx.Addr().Is4():
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, "must be an IPv4 CIDR, e.g. "+wire.DefaultClusterCIDR))
			continue
		case pfx != pfx.Masked():
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, fmt.Sprintf("must be a network address (%s)", pfx.Masked())))
			continue
		case c.name == "podCIDR" && pfx.Bits() > 24:
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, "must hold at least one node's /24 (a prefix of 24 bits or fewer)"))
		case c.name == "loadBalancerCIDR" && pfx.Bits() > 30:
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, "must hold at least two addresses (a prefix of 30 bits or fewer)"))
		case c.name == "hostCIDR" && pfx.Bits() > 30:
			errs = append(errs, field.Invalid(p.Child(c.name), c.v, "must hold at least two hosts (a prefix of 30 bits or fewer)"))
		}
		c.pfx = pfx
		parsed = append(parsed, c)
	}
	for i, a := range parsed {
		for _, b := range parsed[i+1:] {
			if a.pfx.Overlaps(b.pfx) {
				errs = append(errs, field.Invalid(p.Child(b.name), b.v, fmt.Sprintf("overlaps %s %s", a.name, a.v)))
			}
		}
	}
	if ns := n.DNSNameserver; ns != "" && ns != wharfv1.DNSNameserverNone {
		if a, err := netip.ParseAddr(ns); err != nil || !a.Is4() {
			errs = append(errs, field.Invalid(p.Child("dnsNameserver"), ns, `must be an IPv4 address, or "none"`))
		}
	}
	return errs
}

func validateSSHHosts(s *wharfv1.SSHHosts, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.Hosts) == 0 {
		errs = append(errs, field.Required(p.Child("hosts"), "at least one machine"))
	}
	seen := map[string]bool{}
	for i, h := range s.Hosts {
		ip := p.Child("hosts").Index(i)
		switch {
		case strings.TrimSpace(h) == "" || strings.ContainsAny(h, " /@"):
			errs = append(errs, field.Invalid(ip, h, `must be "host" or "host:port"`))
		case seen[h]:
			errs = append(errs, field.Duplicate(ip, h))
		}
		seen[h] = true
	}
	errs = append(errs, validateName(nameIsDNSSubdomain, s.KeySecret, p.Child("keySecret"))...)
	if s.KnownHostsSecret != "" {
		errs = append(errs, validateName(nameIsDNSSubdomain, s.KnownHostsSecret, p.Child("knownHostsSecret"))...)
	}
	return errs
}

// validateMagnumLabels checks Magnum-style labels: settings of the
// service (e.g. auto_healing_enabled), not Kubernetes labels, so values
// are free text; keys are qualified names.
func validateMagnumLabels(labels map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range labels {
		errs = append(errs, validateQualifiedName(k, p.Key(k))...)
		if len(v) > 1024 {
			errs = append(errs, field.TooLong(p.Key(k), "", 1024))
		}
	}
	return append(errs, validateBackupLabels(labels, p)...)
}

// admitClusterTemplate keeps a template that clusters use as it was, but
// for who may see it: the cluster controller reads the template for as
// long as a cluster lives (its provider, networks, hosts' size), as
// Magnum refuses to change a referenced template.
func admitClusterTemplate(ctx context.Context, obj, old runtime.Object, objs Objects) error {
	if old == nil {
		return nil
	}
	t, o := obj.(*wharfv1.ClusterTemplate), old.(*wharfv1.ClusterTemplate)
	a, b := t.Spec.DeepCopy(), o.Spec.DeepCopy()
	a.Public, a.Hidden, b.Public, b.Hidden = false, false, false, false
	if apiequality.Semantic.DeepEqual(a, b) {
		return nil
	}
	users, err := templateUsers(ctx, t, objs)
	if err != nil || len(users) == 0 {
		return err
	}
	return apierrors.NewConflict(wharfv1.Resource("clustertemplates"), t.Name,
		fmt.Errorf("cluster template %q is used by clusters %s: only public and hidden may change", t.Name, strings.Join(users, ", ")))
}

func validateClusterTemplateDelete(ctx context.Context, obj runtime.Object, objs Objects) error {
	t := obj.(*wharfv1.ClusterTemplate)
	users, err := templateUsers(ctx, t, objs)
	if err != nil || len(users) == 0 {
		return err
	}
	return apierrors.NewConflict(wharfv1.Resource("clustertemplates"), t.Name,
		fmt.Errorf("cluster template %q is used by clusters %s: delete them first", t.Name, strings.Join(users, ", ")))
}

// templateUsers names the clusters made from t ("ns/name" for other
// projects'), deleting ones included: their controller still needs it.
// Every project is searched: a template made private since keeps the
// clusters other projects made while it was public.
func templateUsers(ctx context.Context, t *wharfv1.ClusterTemplate, objs Objects) ([]string, error) {
	clusters, err := objs.List(ctx, wharfv1.SchemeGroupVersion.WithResource("clusters"), "")
	if err != nil {
		return nil, fmt.Errorf("list the clusters of template %s/%s: %w", t.Namespace, t.Name, err)
	}
	var users []string
	for _, o := range clusters {
		c := o.(*wharfv1.Cluster)
		if ns, name := TemplateRef(c); ns == t.Namespace && name == t.Name {
			if c.Namespace == t.Namespace {
				users = append(users, c.Name)
			} else {
				users = append(users, c.Namespace+"/"+c.Name)
			}
		}
	}
	slices.Sort(users)
	return users, nil
}

func clusterTemplateRow(t *wharfv1.ClusterTemplate, now time.Time) []any {
	return []any{t.Name, t.Spec.COE, t.Spec.Provider, fmt.Sprint(t.Spec.Public), age(t.CreationTimestamp, now)}
}
