package resources

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Shared field validators, after Kubernetes' pkg/apis/core/validation.

var supportedPortProtocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

const (
	isNegativeErrorMsg   = "must be greater than or equal to 0"
	isNotIntegerErrorMsg = "must be an integer"
	fileModeErrorMsg     = "must be a number between 0 and 0777 (octal), both inclusive"
)

var validateNonnegative = apivalidation.ValidateNonnegativeField

func messages(p *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

func validateDNS1123Label(v string, p *field.Path) field.ErrorList {
	return messages(p, v, validation.IsDNS1123Label(v))
}

func validateDNS1123Subdomain(v string, p *field.Path) field.ErrorList {
	return messages(p, v, validation.IsDNS1123Subdomain(v))
}

func validateQualifiedName(v string, p *field.Path) field.ErrorList {
	return messages(p, v, validation.IsQualifiedName(v))
}

// validateName applies an object name rule to a reference to such an object.
func validateName(fn apivalidation.ValidateNameFunc, v string, p *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return messages(p, v, fn(v, false))
}

func validateProtocol(proto corev1.Protocol, p *field.Path) field.ErrorList {
	switch {
	case proto == "":
		return field.ErrorList{field.Required(p, "")}
	case !oneOf(proto, supportedPortProtocols...):
		return field.ErrorList{field.NotSupported(p, proto, supportedPortProtocols)}
	}
	return nil
}

func validatePortNum(port int32, p *field.Path) field.ErrorList {
	return messages(p, port, validation.IsValidPortNum(int(port)))
}

// validatePortNumOrName checks a port given as a number or an IANA_SVC_NAME.
func validatePortNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return messages(p, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return messages(p, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
	return field.ErrorList{field.Invalid(p, port, "must be an integer or a string")}
}

// validateNonSpecialIP rejects addresses that cannot identify an endpoint.
func validateNonSpecialIP(ip string, p *field.Path) field.ErrorList {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil:
		return field.ErrorList{field.Invalid(p, ip, "must be a valid IP address")}
	case parsed.IsUnspecified():
		return field.ErrorList{field.Invalid(p, ip, fmt.Sprintf("may not be unspecified (%v)", ip))}
	case parsed.IsLoopback():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case parsed.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case parsed.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

func validateNonnegativeQuantity(q resource.Quantity, p *field.Path) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(p, q.String(), isNegativeErrorMsg)}
	}
	return nil
}

// validateResourceQuantity checks a container or node resource amount.
func validateResourceQuantity(name corev1.ResourceName, q resource.Quantity, p *field.Path) field.ErrorList {
	errs := validateNonnegativeQuantity(q, p)
	if isIntegerResource(name) && q.MilliValue()%1000 != 0 {
		errs = append(errs, field.Invalid(p, q.String(), isNotIntegerErrorMsg))
	}
	return errs
}

func validateResourceList(rl corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range rl {
		kp := p.Key(string(name))
		errs = append(errs, validateQualifiedName(string(name), kp)...)
		errs = append(errs, validateResourceQuantity(name, q, kp)...)
	}
	return errs
}

// Resource name classes, after pkg/apis/core/helper.
func isHugePageResource(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), "kubernetes.io/")
}

// isIntegerResource reports resources that cannot be split (devices, hugepages counts).
func isIntegerResource(name corev1.ResourceName) bool {
	return !isNativeResource(name) || name == corev1.ResourcePods
}

// isOvercommitAllowed: extended resources and hugepages need requests == limits.
func isOvercommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePageResource(name)
}

func validateLabelSelector(s *metav1.LabelSelector, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, p)
}

func validateLabels(l map[string]string, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabels(l, p)
}

func validateLabelName(k string, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelName(k, p)
}

func oneOf[T comparable](v T, valid ...T) bool {
	for _, x := range valid {
		if v == x {
			return true
		}
	}
	return false
}
