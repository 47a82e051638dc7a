// Package routes keeps a node's host-gw routes: for every other node of
// the cluster with a pod CIDR and an InternalIP, a route "<pod CIDR> via
// <InternalIP>" in the namespace the agent runs in, so pods reach pods of
// other hosts with their own addresses and no overlay (flannel's host-gw
// backend). It works where the nodes share one link (the local
// provider's bridge, one L2 segment): a node whose InternalIP is not
// directly reachable gets no route. The routes it makes carry Protocol
// and lie inside the cluster CIDR, so it never touches routes of anyone
// else, another cluster's agent on the same namespace included.
//
// It also holds guard routes (Guard): the cluster's pod and service
// ranges are unreachable wherever no more specific route carries them,
// so a packet to a node that is gone, or to a service address before a
// proxy handles it, fails at once instead of leaving by the default route.
package routes

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Route is a route the node needs: Dst (another node's pod CIDR) via Via
// (that node's InternalIP).
type Route struct {
	Dst  netip.Prefix
	Via  netip.Addr
	Node string
}

// Desired returns the routes node self needs to reach the pods of the
// other nodes, sorted by destination. Nodes without a pod CIDR or an
// InternalIP of the CIDR's family are left out, and so are CIDRs that
// overlap self's own (its pods are on its bridge) or another node's
// already taken (the first node by name keeps it): two routes to one
// destination cannot both hold.
func Desired(self string, nodes []*corev1.Node) []Route {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	var own []netip.Prefix
	for _, n := range sorted {
		if n.Name == self {
			own = podCIDRs(n)
		}
	}
	var out []Route
	overlaps := func(p netip.Prefix) bool {
		for _, o := range own {
			if o.Overlaps(p) {
				return true
			}
		}
		for _, r := range out {
			if r.Dst.Overlaps(p) {
				return true
			}
		}
		return false
	}
	for _, n := range sorted {
		if n.Name == self {
			continue
		}
		for _, cidr := range podCIDRs(n) {
			via, ok := internalIP(n, cidr.Addr().Is4())
			if !ok || overlaps(cidr) || cidr.Contains(via) {
				continue
			}
			out = append(out, Route{Dst: cidr, Via: via, Node: n.Name})
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Dst.String(), b.Dst.String()) })
	return out
}

// podCIDRs returns a node's pod CIDRs (spec.podCIDRs, or spec.podCIDR).
func podCIDRs(n *corev1.Node) []netip.Prefix {
	raw := n.Spec.PodCIDRs
	if len(raw) == 0 && n.Spec.PodCIDR != "" {
		raw = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range raw {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// internalIP returns the node's first InternalIP of a family.
func internalIP(n *corev1.Node, v4 bool) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err == nil && ip.Unmap().Is4() == v4 {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
