package resources

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Service validation, after ValidateService in pkg/apis/core/validation.

var (
	serviceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort}
	affinities   = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	ipFamilies   = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	ipPolicies   = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
	extPolicies  = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	intPolicies  = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
)

// maxClientIPAffinitySeconds is a day, Kubernetes' limit.
const maxClientIPAffinitySeconds = 86400

func validateService(svc *corev1.Service) field.ErrorList {
	errs := validateMeta(&svc.ObjectMeta, true, nameIsDNS1035Label)
	p := field.NewPath("spec")
	spec := &svc.Spec
	headless := isHeadless(svc)

	switch {
	case spec.Type == "":
		errs = append(errs, field.Required(p.Child("type"), ""))
	case !oneOf(spec.Type, serviceTypes...):
		errs = append(errs, field.NotSupported(p.Child("type"), spec.Type, serviceTypes))
	}
	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless {
			errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), corev1.ClusterIPNone, fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 || spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(p.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(p.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// A trailing dot marks the CNAME fully qualified.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, validateDNS1123Subdomain(cname, p.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		}
	}

	errs = append(errs, validateServicePorts(svc, p.Child("ports"))...)
	if spec.Selector != nil {
		errs = append(errs, validateLabels(spec.Selector, p.Child("selector"))...)
	}
	errs = append(errs, validateSessionAffinity(spec, p)...)
	errs = append(errs, validateClusterIPs(svc, p)...)
	for i, ip := range spec.ExternalIPs {
		ep := p.Child("externalIPs").Index(i)
		if e := validation.IsValidIP(ep, ip); len(e) > 0 {
			errs = append(errs, e...)
		} else {
			errs = append(errs, validateNonSpecialIP(ip, ep)...)
		}
	}
	if len(spec.LoadBalancerSourceRanges) > 0 {
		lp := p.Child("loadBalancerSourceRanges")
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(lp, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, r := range spec.LoadBalancerSourceRanges {
			errs = append(errs, validation.IsValidCIDR(lp.Index(i), strings.TrimSpace(r))...)
		}
	}
	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(p.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.LoadBalancerClass != nil {
		if spec.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(p.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, validateQualifiedName(*spec.LoadBalancerClass, p.Child("loadBalancerClass"))...)
		}
	}
	return append(errs, validateTrafficPolicies(svc, p)...)
}

func validateServicePorts(svc *corev1.Service, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	names := map[string]bool{}
	ports := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, sp := range spec.Ports {
		ip := p.Index(i)
		if len(spec.Ports) > 1 && sp.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else if sp.Name != "" {
			errs = append(errs, validateDNS1123Label(sp.Name, ip.Child("name"))...)
			if names[sp.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), sp.Name))
			}
			names[sp.Name] = true
		}
		errs = append(errs, validatePortNum(sp.Port, ip.Child("port"))...)
		errs = append(errs, validateProtocol(sp.Protocol, ip.Child("protocol"))...)
		errs = append(errs, validatePortNumOrName(sp.TargetPort, ip.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*sp.AppProtocol, ip.Child("appProtocol"))...)
		}
		if sp.NodePort != 0 {
			if spec.Type == corev1.ServiceTypeClusterIP || spec.Type == corev1.ServiceTypeExternalName {
				errs = append(errs, field.Forbidden(ip.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", spec.Type)))
			} else {
				errs = append(errs, validatePortNum(sp.NodePort, ip.Child("nodePort"))...)
			}
			key := fmt.Sprintf("%s/%d", sp.Protocol, sp.NodePort)
			if nodePorts[key] {
				errs = append(errs, field.Duplicate(ip.Child("nodePort"), sp.NodePort))
			}
			nodePorts[key] = true
		}
		key := fmt.Sprintf("%s/%d", sp.Protocol, sp.Port)
		if ports[key] {
			errs = append(errs, field.Duplicate(ip, key))
		}
		ports[key] = true
	}
	return errs
}

func validateSessionAffinity(spec *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	ap := p.Child("sessionAffinity")
	switch {
	case spec.SessionAffinity == "":
		return field.ErrorList{field.Required(ap, "")}
	case !oneOf(spec.SessionAffinity, affinities...):
		return field.ErrorList{field.NotSupported(ap, spec.SessionAffinity, affinities)}
	}
	cp := p.Child("sessionAffinityConfig")
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		if spec.SessionAffinityConfig != nil {
			return field.ErrorList{field.Forbidden(cp, fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone))}
		}
		return nil
	}
	c := spec.SessionAffinityConfig
	tp := cp.Child("clientIP", "timeoutSeconds")
	switch {
	case c == nil:
		return field.ErrorList{field.Required(cp, fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP))}
	case c.ClientIP == nil:
		return field.ErrorList{field.Required(cp.Child("clientIP"), fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP))}
	case c.ClientIP.TimeoutSeconds == nil:
		return field.ErrorList{field.Required(tp, fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP))}
	case *c.ClientIP.TimeoutSeconds <= 0 || *c.ClientIP.TimeoutSeconds > maxClientIPAffinitySeconds:
		return field.ErrorList{field.Invalid(tp, *c.ClientIP.TimeoutSeconds, fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateClusterIPs checks clusterIP, clusterIPs and the IP families
// together; the apiserver allocates addresses, so both may be empty.
func validateClusterIPs(svc *corev1.Service, p *field.Path) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	cp := p.Child("clusterIPs")
	if spec.ClusterIP != "" {
		if len(spec.ClusterIPs) == 0 {
			errs = append(errs, field.Required(cp, ""))
		} else if spec.ClusterIPs[0] != spec.ClusterIP {
			errs = append(errs, field.Invalid(cp, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) > 0 {
		errs = append(errs, field.Invalid(cp, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		fp := p.Child("ipFamilies").Index(i)
		if !oneOf(f, ipFamilies...) {
			errs = append(errs, field.NotSupported(fp, f, ipFamilies))
		}
		if seen[f] {
			errs = append(errs, field.Duplicate(fp, f))
		}
		seen[f] = true
	}
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(p.Child("ipFamilies"), spec.IPFamilies, "may only hold up to 2 values"))
	}
	if pol := spec.IPFamilyPolicy; pol != nil {
		if !oneOf(*pol, ipPolicies...) {
			errs = append(errs, field.NotSupported(p.Child("ipFamilyPolicy"), *pol, ipPolicies))
		} else if *pol == corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) > 1 {
			errs = append(errs, field.Invalid(p.Child("ipFamilies"), spec.IPFamilies, "when multiple IP families are specified, IP family policy must be PreferDualStack or RequireDualStack"))
		}
	}
	bad := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				bad = true
				errs = append(errs, field.Invalid(cp, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		e := validation.IsValidIP(cp.Index(i), ip)
		bad = bad || len(e) > 0
		errs = append(errs, e...)
	}
	if len(spec.ClusterIPs) > 2 {
		return append(errs, field.Invalid(cp, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if bad {
		return errs
	}
	if len(spec.ClusterIPs) == 2 && isIPv6(spec.ClusterIPs[0]) == isIPv6(spec.ClusterIPs[1]) {
		errs = append(errs, field.Invalid(cp, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
	}
	if !isHeadless(svc) {
		for i, ip := range spec.ClusterIPs {
			if i >= len(spec.IPFamilies) {
				break
			}
			if spec.IPFamilies[i] == corev1.IPv4Protocol && isIPv6(ip) {
				errs = append(errs, field.Invalid(cp.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			}
			if spec.IPFamilies[i] == corev1.IPv6Protocol && !isIPv6(ip) {
				errs = append(errs, field.Invalid(cp.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return errs
}

func isIPv6(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() == nil
}

func validateTrafficPolicies(svc *corev1.Service, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	spec := &svc.Spec
	ep := p.Child("externalTrafficPolicy")
	if needsNodePort(svc) {
		switch {
		case spec.ExternalTrafficPolicy == "":
			errs = append(errs, field.Required(ep, ""))
		case !oneOf(spec.ExternalTrafficPolicy, extPolicies...):
			errs = append(errs, field.NotSupported(ep, spec.ExternalTrafficPolicy, extPolicies))
		}
	} else if spec.ExternalTrafficPolicy != "" {
		// A ClusterIP service with externalIPs is reachable from outside too.
		externallyAccessible := spec.Type == corev1.ServiceTypeClusterIP && len(spec.ExternalIPs) > 0
		if !externallyAccessible {
			errs = append(errs, field.Invalid(ep, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		} else if !oneOf(spec.ExternalTrafficPolicy, extPolicies...) {
			errs = append(errs, field.NotSupported(ep, spec.ExternalTrafficPolicy, extPolicies))
		}
	}
	if spec.HealthCheckNodePort != 0 {
		hp := p.Child("healthCheckNodePort")
		if spec.Type != corev1.ServiceTypeLoadBalancer || spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			errs = append(errs, field.Invalid(hp, spec.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			errs = append(errs, validatePortNum(spec.HealthCheckNodePort, hp)...)
		}
	}
	ip := p.Child("internalTrafficPolicy")
	switch pol := spec.InternalTrafficPolicy; {
	case spec.Type == corev1.ServiceTypeExternalName:
	case pol == nil:
		errs = append(errs, field.Required(ip, ""))
	case !oneOf(*pol, intPolicies...):
		errs = append(errs, field.NotSupported(ip, *pol, intPolicies))
	}
	return errs
}

// validateServiceUpdate: the primary clusterIP and IP family never change,
// except through ExternalName (which has neither).
func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	if svc.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return errs
	}
	cp := field.NewPath("spec", "clusterIPs")
	n, o := svc.Spec.ClusterIPs, old.Spec.ClusterIPs
	switch {
	case isHeadless(svc) && isHeadless(old):
	case len(o) == len(n):
		for i := range o {
			if o[i] != n[i] {
				errs = append(errs, field.Invalid(cp.Index(i), n, "may not change once set"))
			}
		}
	case len(o) > len(n):
		if len(n) == 0 {
			errs = append(errs, field.Invalid(cp.Index(0), n, "primary clusterIP can not be unset"))
		} else if n[0] != o[0] {
			errs = append(errs, field.Invalid(cp.Index(0), n, "may not change once set"))
		}
		if len(n) == 1 && (svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			errs = append(errs, field.Invalid(cp.Index(0), n, "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	case len(o) > 0 && n[0] != o[0]:
		errs = append(errs, field.Invalid(cp.Index(0), n, "may not change once set"))
	}
	if nf, of := svc.Spec.IPFamilies, old.Spec.IPFamilies; len(nf) > 0 && len(of) > 0 && nf[0] != of[0] && !isHeadless(old) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilies").Index(0), nf[0], "may not change once set"))
	}
	return errs
}
