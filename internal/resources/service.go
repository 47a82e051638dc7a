package resources

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Services is core/v1 services. The apiserver allocates clusterIPs and
// nodePorts; this package only defaults, validates and carries them over.
func Services() *Resource {
	return &Resource{
		GVR:              corev1.SchemeGroupVersion.WithResource("services"),
		Kind:             "Service",
		SingularName:     "service",
		Namespaced:       true,
		ShortNames:       []string{"svc"},
		Categories:       []string{"all"},
		New:              func() runtime.Object { return &corev1.Service{} },
		NewList:          func() runtime.Object { return &corev1.ServiceList{} },
		HasStatus:        true,
		Default:          typed(defaultService),
		PrepareForUpdate: typedPrepareUpdate(prepareServiceForUpdate),
		Validate:         typedValidate(validateService),
		ValidateUpdate:   typedValidateUpdate(validateServiceUpdate),
		ValidateStatus:   typedValidateUpdate(validateServiceStatusUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Type", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["type"]},
			{Name: "Cluster-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
			{Name: "External-IP", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]},
			{Name: "Port(s)", Type: "string", Description: corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
			ageColumn,
			{Name: "Selector", Type: "string", Priority: 1, Description: corev1.ServiceSpec{}.SwaggerDoc()["selector"]},
		},
		Row: typedRowNow(serviceRow),
	}
}

func defaultService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		c := spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
	for i := range spec.Ports {
		if spec.Ports[i].Protocol == "" {
			spec.Ports[i].Protocol = corev1.ProtocolTCP
		}
		defaultServicePortTarget(&spec.Ports[i])
	}
	if (spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = ptrTo(true)
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if spec.InternalTrafficPolicy == nil {
		spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
	}
	// clusterIP and clusterIPs[0] are one value; clients may set either.
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	// Wharf clusters are single-stack IPv4.
	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
}

// prepareServiceForUpdate keeps what the server allocated when an update
// (kubectl replace, apply of a manifest without them) leaves it out.
func prepareServiceForUpdate(svc, old *corev1.Service) {
	dropTypeDependentFields(svc, old)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if len(svc.Spec.ClusterIPs) == 0 && svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if needsNodePort(svc) && needsNodePort(old) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, o := range old.Spec.Ports {
				if o.Port == p.Port && o.Protocol == p.Protocol {
					p.NodePort = o.NodePort
					break
				}
			}
		}
	}
	if svc.Spec.HealthCheckNodePort == 0 && svc.Spec.Type == old.Spec.Type {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// dropTypeDependentFields clears what belonged to the old type only, when the
// client left it as it was, so that changing a service's type alone is valid.
func dropTypeDependentFields(svc, old *corev1.Service) {
	spec, os := &svc.Spec, &old.Spec
	if spec.Type == os.Type {
		return
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		if slices.Equal(spec.ClusterIPs, os.ClusterIPs) && spec.ClusterIP == os.ClusterIP {
			spec.ClusterIP, spec.ClusterIPs = "", nil
		}
		if slices.Equal(spec.IPFamilies, os.IPFamilies) {
			spec.IPFamilies = nil
		}
		if reflect.DeepEqual(spec.IPFamilyPolicy, os.IPFamilyPolicy) {
			spec.IPFamilyPolicy = nil
		}
		if reflect.DeepEqual(spec.InternalTrafficPolicy, os.InternalTrafficPolicy) {
			spec.InternalTrafficPolicy = nil
		}
	}
	if !needsNodePort(svc) && needsNodePort(old) {
		for i := range spec.Ports {
			for _, o := range os.Ports {
				if o.Port == spec.Ports[i].Port && o.Protocol == spec.Ports[i].Protocol && o.NodePort == spec.Ports[i].NodePort {
					spec.Ports[i].NodePort = 0
				}
			}
		}
		if spec.ExternalTrafficPolicy == os.ExternalTrafficPolicy {
			spec.ExternalTrafficPolicy = ""
		}
	}
	if spec.Type != corev1.ServiceTypeLoadBalancer && os.Type == corev1.ServiceTypeLoadBalancer {
		if spec.HealthCheckNodePort == os.HealthCheckNodePort {
			spec.HealthCheckNodePort = 0
		}
		if reflect.DeepEqual(spec.AllocateLoadBalancerNodePorts, os.AllocateLoadBalancerNodePorts) {
			spec.AllocateLoadBalancerNodePorts = nil
		}
		if reflect.DeepEqual(spec.LoadBalancerClass, os.LoadBalancerClass) {
			spec.LoadBalancerClass = nil
		}
	}
}

func needsNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone || (len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone)
}

func serviceRow(svc *corev1.Service, now time.Time) []any {
	clusterIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		clusterIP = svc.Spec.ClusterIP
	}
	return []any{svc.Name, string(svc.Spec.Type), clusterIP, serviceExternalIP(svc), orNone(servicePorts(svc.Spec.Ports)),
		age(svc.CreationTimestamp, now), labels.FormatLabels(svc.Spec.Selector)}
}

// serviceExternalIP renders EXTERNAL-IP as kubectl does (unabridged, as for -o wide).
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		seen := map[string]bool{}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			v := in.IP
			if v == "" {
				v = in.Hostname
			}
			if v != "" && !seen[v] {
				seen[v] = true
				ips = append(ips, v)
			}
		}
		sort.Strings(ips)
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// servicePorts renders PORT(S): "80/TCP", or "80:30080/TCP" with a node port.
func servicePorts(ports []corev1.ServicePort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(parts, ",")
}

func validateServiceStatusUpdate(svc, _ *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, in := range svc.Status.LoadBalancer.Ingress {
		ip := p.Index(i)
		if in.IP != "" {
			errs = append(errs, validateNonSpecialIPOrEmpty(in.IP, ip.Child("ip"))...)
		}
		if in.Hostname != "" {
			errs = append(errs, validateDNS1123Subdomain(in.Hostname, ip.Child("hostname"))...)
		}
	}
	return errs
}

func validateNonSpecialIPOrEmpty(ip string, p *field.Path) field.ErrorList {
	if ip == "" {
		return nil
	}
	return validateNonSpecialIP(ip, p)
}
