package ingress

import (
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// The informers' objects are reduced on arrival to what a build needs:
// nothing of them is kept (they are the informer's), an update that
// changes nothing routing uses costs no build, and a stored value is
// never modified, only replaced, so a build reads a snapshot without the
// lock.

// Annotations read on Ingresses and IngressClasses.
const (
	annotationLegacyClass     = "kubernetes.io/ingress.class"
	annotationDefaultClass    = networkingv1.AnnotationIsDefaultIngressClass
	annotationSSLRedirect     = "wharf.dev/ssl-redirect"
	annotationBackendProtocol = "wharf.dev/backend-protocol"
)

// ingress is what routing uses of an Ingress.
type ingress struct {
	created         time.Time
	className       *string // spec.ingressClassName
	legacyClass     *string // annotation kubernetes.io/ingress.class
	sslRedirect     string  // annotation value, checked at build
	backendProtocol string  // annotation value, checked at build
	defaultBackend  *backendRef
	rules           []rule
	tls             []tlsEntry
}

type rule struct {
	host  string
	paths []pathRule // nil: no http section
}

type pathRule struct {
	path    string
	typ     networkingv1.PathType
	backend backendRef
}

// backendRef is an IngressBackend: a service port by number or name, or
// a resource (not supported, kept to say so).
type backendRef struct {
	service  string
	port     int32
	portName string
	resource string // "Kind/name" of a resource backend
}

type tlsEntry struct {
	hosts  []string
	secret string
}

func reduceIngress(in *networkingv1.Ingress) *ingress {
	ing := &ingress{
		created:         in.CreationTimestamp.Time,
		sslRedirect:     in.Annotations[annotationSSLRedirect],
		backendProtocol: in.Annotations[annotationBackendProtocol],
	}
	if c := in.Spec.IngressClassName; c != nil {
		name := *c
		ing.className = &name
	}
	if c, ok := in.Annotations[annotationLegacyClass]; ok {
		ing.legacyClass = &c
	}
	if b := in.Spec.DefaultBackend; b != nil {
		r := reduceBackend(b)
		ing.defaultBackend = &r
	}
	for _, r := range in.Spec.Rules {
		out := rule{host: r.Host}
		if r.HTTP != nil {
			out.paths = make([]pathRule, 0, len(r.HTTP.Paths))
			for _, p := range r.HTTP.Paths {
				typ := networkingv1.PathTypeImplementationSpecific
				if p.PathType != nil {
					typ = *p.PathType
				}
				out.paths = append(out.paths, pathRule{path: p.Path, typ: typ, backend: reduceBackend(&p.Backend)})
			}
		}
		ing.rules = append(ing.rules, out)
	}
	for _, t := range in.Spec.TLS {
		ing.tls = append(ing.tls, tlsEntry{hosts: slices.Clone(t.Hosts), secret: t.SecretName})
	}
	return ing
}

func reduceBackend(b *networkingv1.IngressBackend) backendRef {
	var r backendRef
	if s := b.Service; s != nil {
		r.service, r.port, r.portName = s.Name, s.Port.Number, s.Port.Name
	}
	if res := b.Resource; res != nil {
		r.resource = res.Kind + "/" + res.Name
	}
	return r
}

// class is one of our IngressClasses (other controllers' are not kept).
type class struct {
	isDefault bool
}

// service is what routing uses of a Service.
type service struct {
	externalName bool
	ports        []servicePort // TCP ones
}

type servicePort struct {
	name string
	port int32
}

func reduceService(svc *corev1.Service) *service {
	s := &service{externalName: svc.Spec.Type == corev1.ServiceTypeExternalName}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == corev1.ProtocolTCP || p.Protocol == "" {
			s.ports = append(s.ports, servicePort{name: p.Name, port: p.Port})
		}
	}
	return s
}

// slice is what routing uses of an EndpointSlice: its TCP ports and its
// usable (ready, not terminating) IPv4 endpoints.
type slice struct {
	service string // kubernetes.io/service-name, in the slice's namespace
	ports   []servicePort
	addrs   []netip.Addr
}

// reduceSlice returns nil for a slice that cannot serve (no service label,
// not IPv4).
func reduceSlice(es *discoveryv1.EndpointSlice) *slice {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" || es.AddressType != discoveryv1.AddressTypeIPv4 {
		return nil
	}
	s := &slice{service: name}
	for _, p := range es.Ports {
		if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		sp := servicePort{port: *p.Port}
		if p.Name != nil {
			sp.name = *p.Name
		}
		s.ports = append(s.ports, sp)
	}
	for _, ep := range es.Endpoints {
		c := ep.Conditions
		if (c.Ready != nil && !*c.Ready) || (c.Terminating != nil && *c.Terminating) || len(ep.Addresses) == 0 {
			continue
		}
		if a, err := netip.ParseAddr(ep.Addresses[0]); err == nil && a.Is4() {
			s.addrs = append(s.addrs, a)
		}
	}
	return s
}
