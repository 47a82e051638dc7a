// Package fieldpath resolves the downward API for the pod workers: the pod
// fields (fieldRef) and container resources (resourceFieldRef) that
// environment variables and downwardAPI volumes expose to a container,
// with the formats and rounding of Kubernetes' pkg/fieldpath and
// pkg/api/v1/resource.
package fieldpath

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Addresses are the runtime facts the pod object may not hold yet: the
// agent resolves env before it writes them to the pod's status.
type Addresses struct {
	PodIPs  []string
	HostIPs []string
}

// ObjectField returns the value of a fieldRef path such as metadata.name,
// metadata.labels['app'] or status.podIP.
func ObjectField(pod *v1.Pod, path string, addr Addresses) (string, error) {
	if name, key, ok := splitSubscript(path); ok {
		switch name {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", path)
		}
	}
	switch path {
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(addr.HostIPs), nil
	case "status.hostIPs":
		return strings.Join(addr.HostIPs, ","), nil
	case "status.podIP":
		return first(addr.PodIPs), nil
	case "status.podIPs":
		return strings.Join(addr.PodIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// splitSubscript splits "metadata.labels['key']" into its parts.
func splitSubscript(path string) (name, key string, ok bool) {
	open := strings.Index(path, "['")
	if open < 0 || !strings.HasSuffix(path, "']") {
		return "", "", false
	}
	return path[:open], path[open+2 : len(path)-2], true
}

// FormatMap renders labels or annotations one key="value" per line,
// sorted, as the downward API does.
func FormatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%v=%q", k, m[k])
	}
	return b.String()
}

// ResourceField returns the value of a resourceFieldRef for container c,
// divided by the selector's divisor and rounded up. An unset limit reads as
// the node's allocatable amount, as it does for the kubelet.
func ResourceField(fs *v1.ResourceFieldSelector, c *v1.Container, allocatable v1.ResourceList) (string, error) {
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var q resource.Quantity
	var ok bool
	switch fs.Resource {
	case "limits.cpu", "limits.memory", "limits.ephemeral-storage":
		name := v1.ResourceName(strings.TrimPrefix(fs.Resource, "limits."))
		q, ok = c.Resources.Limits[name]
		if !ok || q.IsZero() {
			q = allocatable[name]
		}
	case "requests.cpu", "requests.memory", "requests.ephemeral-storage":
		q = c.Resources.Requests[v1.ResourceName(strings.TrimPrefix(fs.Resource, "requests."))]
	default:
		if strings.HasPrefix(fs.Resource, "requests.hugepages-") || strings.HasPrefix(fs.Resource, "limits.hugepages-") {
			q = c.Resources.Requests[v1.ResourceName(strings.SplitN(fs.Resource, ".", 2)[1])]
			break
		}
		return "", fmt.Errorf("unsupported container resource: %v", fs.Resource)
	}
	if strings.HasSuffix(fs.Resource, ".cpu") {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}
