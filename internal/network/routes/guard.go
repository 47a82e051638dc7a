package routes

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GuardMetric is the priority of guard routes: higher than any route a
// link, a routing daemon or this package makes for the same destination,
// so those win while they exist.
const GuardMetric = 0xfff00000

// Guard makes dst unreachable in the namespace of h (nil: the caller's)
// wherever nothing more specific routes it: the ranges of a cluster (its
// pods, its services, its hosts' network) must never be routed out of the
// default interface when the route that should carry them is missing (a
// node gone, a bridge deleted, no service proxy yet). The kernel answers
// with "no route to host" at once instead. Idempotent.
func Guard(h *netlink.Handle, dst netip.Prefix) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	r := guardRoute(dst)
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("unreachable route to %s: %w", dst, err)
	}
	return nil
}

// Unguard removes the route Guard made; a missing route is no error.
func Unguard(h *netlink.Handle, dst netip.Prefix) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	if err := h.RouteDel(guardRoute(dst)); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unreachable route to %s: %w", dst, err)
	}
	return nil
}

// Guarded says whether Guard's route to dst exists.
func Guarded(h *netlink.Handle, dst netip.Prefix) bool {
	if h == nil {
		h = &netlink.Handle{}
	}
	family := netlink.FAMILY_V4
	if dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	rs, err := h.RouteListFiltered(family, guardRoute(dst), netlink.RT_FILTER_DST|netlink.RT_FILTER_TYPE|netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	return err == nil && len(rs) > 0
}

func guardRoute(dst netip.Prefix) *netlink.Route {
	dst = dst.Masked()
	return &netlink.Route{
		Dst: ipNet(dst), Type: unix.RTN_UNREACHABLE, Protocol: Protocol,
		Priority: GuardMetric, Table: table, Family: family(dst),
	}
}

func family(p netip.Prefix) int {
	if p.Addr().Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}
