package resources

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EndpointSlices is discovery.k8s.io/v1 endpointslices, which kube-proxy-like
// consumers and kubectl describe service read.
func EndpointSlices() *Resource {
	return &Resource{
		GVR:          discoveryv1.SchemeGroupVersion.WithResource("endpointslices"),
		Kind:         "EndpointSlice",
		SingularName: "endpointslice",
		Namespaced:   true,
		New:          func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:      func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Default: typed(func(s *discoveryv1.EndpointSlice) {
			for i := range s.Ports {
				if s.Ports[i].Protocol == nil {
					s.Ports[i].Protocol = ptrTo(corev1.ProtocolTCP)
				}
				if s.Ports[i].Name == nil {
					s.Ports[i].Name = ptrTo("")
				}
			}
		}),
		Validate: typedValidate(validateEndpointSlice),
		ValidateUpdate: typedValidateUpdate(func(s, old *discoveryv1.EndpointSlice) field.ErrorList {
			return apivalidation.ValidateImmutableField(s.AddressType, old.AddressType, field.NewPath("addressType"))
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "AddressType", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"]},
			{Name: "Ports", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"]},
			{Name: "Endpoints", Type: "string", Description: discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"]},
			ageColumn,
		},
		Row: typedRowNow(endpointSliceRow),
	}
}

// Limits from Kubernetes' discovery validation.
const (
	maxSliceEndpoints = 1000
	maxSlicePorts     = 20000
	maxSliceAddresses = 100
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}

func validateEndpointSlice(s *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	if !oneOf(s.AddressType, addressTypes...) {
		errs = append(errs, field.NotSupported(field.NewPath("addressType"), s.AddressType, addressTypes))
	}
	ep := field.NewPath("endpoints")
	if len(s.Endpoints) > maxSliceEndpoints {
		errs = append(errs, field.TooMany(ep, len(s.Endpoints), maxSliceEndpoints))
	}
	for i, e := range s.Endpoints {
		ip := ep.Index(i)
		ap := ip.Child("addresses")
		switch {
		case len(e.Addresses) == 0:
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		case len(e.Addresses) > maxSliceAddresses:
			errs = append(errs, field.TooMany(ap, len(e.Addresses), maxSliceAddresses))
		}
		for j, a := range e.Addresses {
			errs = append(errs, validateSliceAddress(s.AddressType, a, ap.Index(j))...)
		}
		if e.Hostname != nil {
			errs = append(errs, validateDNS1123Label(*e.Hostname, ip.Child("hostname"))...)
		}
		if e.NodeName != nil {
			errs = append(errs, messages(ip.Child("nodeName"), *e.NodeName, nameIsDNSSubdomain(*e.NodeName, false))...)
		}
		if e.TargetRef != nil && e.TargetRef.Namespace != "" {
			errs = append(errs, messages(ip.Child("targetRef", "namespace"), e.TargetRef.Namespace, nameIsDNSLabel(e.TargetRef.Namespace, false))...)
		}
	}
	pp := field.NewPath("ports")
	if len(s.Ports) > maxSlicePorts {
		errs = append(errs, field.TooMany(pp, len(s.Ports), maxSlicePorts))
	}
	names := map[string]bool{}
	for i, port := range s.Ports {
		ip := pp.Index(i)
		name := deref(port.Name, "")
		if name != "" {
			errs = append(errs, validateDNS1123Label(name, ip.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), name))
		}
		names[name] = true
		if port.Protocol == nil {
			errs = append(errs, field.Required(ip.Child("protocol"), ""))
		} else {
			errs = append(errs, validateProtocol(*port.Protocol, ip.Child("protocol"))...)
		}
		if port.Port != nil {
			errs = append(errs, validatePortNum(*port.Port, ip.Child("port"))...)
		}
		if port.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*port.AppProtocol, ip.Child("appProtocol"))...)
		}
	}
	return errs
}

func validateSliceAddress(t discoveryv1.AddressType, a string, p *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validation.IsValidIP(p, a); len(errs) > 0 {
			return errs
		}
		if (t == discoveryv1.AddressTypeIPv6) != isIPv6(a) {
			return field.ErrorList{field.Invalid(p, a, fmt.Sprintf("must be an %s address", t))}
		}
	case discoveryv1.AddressTypeFQDN:
		return validateDNS1123Subdomain(a, p)
	}
	return nil
}

func endpointSliceRow(s *discoveryv1.EndpointSlice, now time.Time) []any {
	const max = 3
	var ports []string
	for _, p := range s.Ports {
		v := "*"
		if p.Port != nil {
			v = strconv.Itoa(int(*p.Port))
		} else if p.Name != nil {
			v = *p.Name
		}
		ports = append(ports, v)
	}
	var addrs []string
	for _, e := range s.Endpoints {
		addrs = append(addrs, e.Addresses...)
	}
	return []any{s.Name, string(s.AddressType), listWithMore(ports, max), listWithMore(addrs, max), age(s.CreationTimestamp, now)}
}

// listWithMore shows the first max items and how many more there are.
func listWithMore(items []string, max int) string {
	if len(items) > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(items[:max], ","), len(items)-max)
	}
	if len(items) == 0 {
		return "<unset>"
	}
	return strings.Join(items, ",")
}
