package resources

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Ingresses is networking.k8s.io/v1 ingresses: HTTP routes into the
// cluster, served by the agents' ingress proxy.
func Ingresses() *Resource {
	return &Resource{
		GVR:          networkingv1.SchemeGroupVersion.WithResource("ingresses"),
		Kind:         "Ingress",
		SingularName: "ingress",
		Namespaced:   true,
		ShortNames:   []string{"ing"},
		HasStatus:    true,
		New:          func() runtime.Object { return &networkingv1.Ingress{} },
		NewList:      func() runtime.Object { return &networkingv1.IngressList{} },
		Validate:     typedValidate(validateIngress),
		ValidateStatus: typedValidateUpdate(func(ing, _ *networkingv1.Ingress) field.ErrorList {
			return validateIngressStatus(ing)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Class", Type: "string", Description: networkingv1.IngressSpec{}.SwaggerDoc()["ingressClassName"]},
			{Name: "Hosts", Type: "string", Description: networkingv1.IngressRule{}.SwaggerDoc()["host"]},
			{Name: "Address", Type: "string", Description: networkingv1.IngressStatus{}.SwaggerDoc()["loadBalancer"]},
			{Name: "Ports", Type: "string", Description: "Ports of this Ingress (80, and 443 with TLS)"},
			ageColumn,
		},
		Row: typedRowNow(ingressRow),
	}
}

// IngressClasses is networking.k8s.io/v1 ingressclasses: which controller
// serves the Ingresses naming a class.
func IngressClasses() *Resource {
	return &Resource{
		GVR:          networkingv1.SchemeGroupVersion.WithResource("ingressclasses"),
		Kind:         "IngressClass",
		SingularName: "ingressclass",
		New:          func() runtime.Object { return &networkingv1.IngressClass{} },
		NewList:      func() runtime.Object { return &networkingv1.IngressClassList{} },
		Validate:     typedValidate(validateIngressClass),
		ValidateUpdate: typedValidateUpdate(func(c, old *networkingv1.IngressClass) field.ErrorList {
			return apivalidation.ValidateImmutableField(c.Spec.Controller, old.Spec.Controller, field.NewPath("spec", "controller"))
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Controller", Type: "string", Description: networkingv1.IngressClassSpec{}.SwaggerDoc()["controller"]},
			{Name: "Parameters", Type: "string", Description: networkingv1.IngressClassSpec{}.SwaggerDoc()["parameters"]},
			ageColumn,
		},
		Row: typedRowNow(ingressClassRow),
	}
}

var pathTypes = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific}

// Sequences a path of type Exact or Prefix may not hold (Kubernetes'
// networking validation).
var invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
var invalidPathSuffixes = []string{"/..", "/."}

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	errs := validateMeta(&ing.ObjectMeta, true, nameIsDNSSubdomain)
	spec, p := &ing.Spec, field.NewPath("spec")
	if spec.DefaultBackend == nil && len(spec.Rules) == 0 {
		errs = append(errs, field.Invalid(p, spec, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(spec.DefaultBackend, p.Child("defaultBackend"))...)
	}
	if c := spec.IngressClassName; c != nil {
		errs = append(errs, validateDNS1123Subdomain(*c, p.Child("ingressClassName"))...)
	}
	for i, r := range spec.Rules {
		rp := p.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, validateIngressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		hp := rp.Child("http", "paths")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp, ""))
		}
		for j, path := range r.HTTP.Paths {
			pp := hp.Index(j)
			errs = append(errs, validateIngressPath(path, pp)...)
			errs = append(errs, validateIngressBackend(&path.Backend, pp.Child("backend"))...)
		}
	}
	for i, t := range spec.TLS {
		tp := p.Child("tls").Index(i)
		for j, h := range t.Hosts {
			errs = append(errs, validateIngressHost(h, tp.Child("hosts").Index(j))...)
		}
		if t.SecretName != "" {
			errs = append(errs, validateDNS1123Subdomain(t.SecretName, tp.Child("secretName"))...)
		}
	}
	return append(errs, validateIngressStatus(ing)...)
}

// validateIngressHost: a DNS name, "*." in front for a wildcard, never an
// IP address.
func validateIngressHost(host string, p *field.Path) field.ErrorList {
	if _, err := netip.ParseAddr(host); err == nil {
		return field.ErrorList{field.Invalid(p, host, "must be a DNS name, not an IP address")}
	}
	if strings.HasPrefix(host, "*.") {
		return messages(p, host, validation.IsWildcardDNS1123Subdomain(host))
	}
	return messages(p, host, validation.IsDNS1123Subdomain(host))
}

func validateIngressPath(path networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case path.PathType == nil:
		return field.ErrorList{field.Required(p.Child("pathType"), "pathType must be specified")}
	case !oneOf(*path.PathType, pathTypes...):
		return field.ErrorList{field.NotSupported(p.Child("pathType"), *path.PathType, pathTypes)}
	}
	pp := p.Child("path")
	if !strings.HasPrefix(path.Path, "/") {
		return append(errs, field.Invalid(pp, path.Path, "must be an absolute path"))
	}
	if *path.PathType == networkingv1.PathTypeImplementationSpecific {
		return errs
	}
	for _, seq := range invalidPathSequences {
		if strings.Contains(path.Path, seq) {
			errs = append(errs, field.Invalid(pp, path.Path, fmt.Sprintf("must not contain '%s'", seq)))
		}
	}
	for _, suffix := range invalidPathSuffixes {
		if strings.HasSuffix(path.Path, suffix) {
			errs = append(errs, field.Invalid(pp, path.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
		}
	}
	return errs
}

func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	switch {
	case b.Service == nil && b.Resource == nil:
		return field.ErrorList{field.Invalid(p, b, "one backend (`service` or `resource`) must be specified")}
	case b.Service != nil && b.Resource != nil:
		return field.ErrorList{field.Invalid(p, b, "cannot set both `resource` and `service` backends")}
	case b.Resource != nil:
		var errs field.ErrorList
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(p.Child("resource", "kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(p.Child("resource", "name"), ""))
		}
		return errs
	}
	sp := p.Child("service")
	errs := validateName(nameIsDNS1035Label, b.Service.Name, sp.Child("name"))
	port, pp := b.Service.Port, sp.Child("port")
	switch {
	case port.Name != "" && port.Number != 0:
		errs = append(errs, field.Invalid(pp, port, "cannot set both port name & port number"))
	case port.Name != "":
		errs = append(errs, messages(pp.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
	case port.Number != 0:
		errs = append(errs, validatePortNum(port.Number, pp.Child("number"))...)
	default:
		errs = append(errs, field.Required(pp, "port name or number is required"))
	}
	return errs
}

func validateIngressStatus(ing *networkingv1.Ingress) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, in := range ing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			errs = append(errs, validateNonSpecialIP(in.IP, p.Index(i).Child("ip"))...)
		}
		if in.Hostname != "" {
			errs = append(errs, messages(p.Index(i).Child("hostname"), in.Hostname, validation.IsDNS1123Subdomain(in.Hostname))...)
		}
	}
	return errs
}

func validateIngressClass(c *networkingv1.IngressClass) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, nameIsDNSSubdomain)
	p := field.NewPath("spec", "controller")
	switch ctl := c.Spec.Controller; {
	case ctl == "":
		errs = append(errs, field.Required(p, ""))
	case len(ctl) > 250:
		errs = append(errs, field.TooLong(p, "", 250))
	default:
		errs = append(errs, validation.IsDomainPrefixedPath(p, ctl)...)
	}
	if par := c.Spec.Parameters; par != nil {
		pp := field.NewPath("spec", "parameters")
		if par.Kind == "" {
			errs = append(errs, field.Required(pp.Child("kind"), ""))
		}
		if par.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		}
	}
	return errs
}

func ingressRow(ing *networkingv1.Ingress, now time.Time) []any {
	var hosts []string
	for _, r := range ing.Spec.Rules {
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	hostCell := "*"
	if len(hosts) > 0 {
		hostCell = strings.Join(hosts, ",")
	}
	var addrs []string
	for _, in := range ing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			addrs = append(addrs, in.IP)
		} else if in.Hostname != "" {
			addrs = append(addrs, in.Hostname)
		}
	}
	ports := "80"
	if len(ing.Spec.TLS) > 0 {
		ports = "80, 443"
	}
	return []any{ing.Name, orNone(deref(ing.Spec.IngressClassName, "")), hostCell, strings.Join(addrs, ","), ports, age(ing.CreationTimestamp, now)}
}

func ingressClassRow(c *networkingv1.IngressClass, now time.Time) []any {
	params := "<none>"
	if par := c.Spec.Parameters; par != nil {
		params = par.Kind + "/" + par.Name
		if par.APIGroup != nil && *par.APIGroup != "" {
			params = par.Kind + "." + *par.APIGroup + "/" + par.Name
		}
	}
	return []any{c.Name, c.Spec.Controller, params, age(c.CreationTimestamp, now)}
}
