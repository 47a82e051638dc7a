package servicelb

import (
	"fmt"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// requested returns the address svc asks for: the first IPv4 address of
// the IPsAnnotation if it is set, else spec.loadBalancerIP; the zero Addr
// if it asks for none. The error says, for the service's events, why what
// it asks for cannot be read.
func requested(svc *v1.Service) (netip.Addr, error) {
	if v := strings.TrimSpace(svc.Annotations[IPsAnnotation]); v != "" {
		addrs, err := parseIPs(v)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("annotation %s: %w", IPsAnnotation, err)
		}
		for _, a := range addrs {
			if a.Is4() {
				return a, nil
			}
		}
		return netip.Addr{}, fmt.Errorf("annotation %s has no IPv4 address (the load balancer pool is IPv4 only)", IPsAnnotation)
	}
	v := strings.TrimSpace(svc.Spec.LoadBalancerIP)
	if v == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("spec.loadBalancerIP %q is not an IP address", v)
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("spec.loadBalancerIP %s is not an IPv4 address (the load balancer pool is IPv4 only)", a)
	}
	return a, nil
}

// parseIPs parses a comma-separated list of IP addresses, as in
// metallb.universe.tf/loadBalancerIPs; blanks around each are ignored.
func parseIPs(s string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", strings.TrimSpace(f))
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}
