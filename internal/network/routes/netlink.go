package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Protocol marks the routes this package makes (the rtm_protocol of a
// route; `ip route` shows "proto 87"). It is none of the numbers in
// iproute2's rt_protos, so routes of the kernel, DHCP, routing daemons or
// an administrator are never ours.
const Protocol netlink.RouteProtocol = 87

// table is the routing table the routes go into.
const table = unix.RT_TABLE_MAIN

// applier makes the routes of a namespace match the desired ones.
type applier struct {
	h   *netlink.Handle
	log *slog.Logger
	// scope is the cluster CIDR: only routes of Protocol inside it are
	// this applier's (another agent on the same namespace, of another
	// cluster, keeps its own); invalid: every route of Protocol.
	scope netip.Prefix
	// skipped remembers why a route was left out, to log it once.
	skipped map[netip.Prefix]string
}

// apply adds or replaces the desired routes and deletes the other routes
// of Protocol. A desired route is left out (and logged) when another
// protocol's route has its destination, or its gateway is not on a link
// of the namespace (host-gw needs the nodes on one segment). It goes on
// after an error and returns them all.
func (a *applier) apply(desired []Route) error {
	all, err := a.list()
	if err != nil {
		return err
	}
	ours := map[netip.Prefix]netlink.Route{}
	foreign := map[netip.Prefix]bool{}
	for _, r := range all {
		dst, ok := prefixOf(r.Dst)
		if !ok {
			continue
		}
		if r.Protocol == Protocol {
			// Guard routes (unreachable) and other clusters' routes are
			// not this applier's to change.
			if r.Type == unix.RTN_UNICAST && (!a.scope.IsValid() || a.scope.Overlaps(dst)) {
				ours[dst] = r
			}
			continue
		}
		foreign[dst] = true
	}
	var errs []error
	want := map[netip.Prefix]bool{}
	for _, d := range desired {
		if a.scope.IsValid() && !a.scope.Overlaps(d.Dst) {
			a.skip(d, slog.LevelWarn, "outside the cluster CIDR "+a.scope.String())
			continue
		}
		want[d.Dst] = true
		if foreign[d.Dst] {
			a.skip(d, slog.LevelWarn, "another route has this destination")
			continue
		}
		link, ok := a.onLink(d.Via)
		if !ok {
			// Expected off one segment, and for simulated nodes: no warning.
			a.skip(d, slog.LevelInfo, "the node's address is not on a link of this host")
			continue
		}
		delete(a.skipped, d.Dst)
		if cur, ok := ours[d.Dst]; ok && cur.Gw.Equal(d.Via.AsSlice()) && cur.LinkIndex == link {
			continue
		}
		r := &netlink.Route{Dst: ipNet(d.Dst), Gw: d.Via.AsSlice(), LinkIndex: link, Protocol: Protocol, Table: table}
		if err := a.h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s (node %s): %w", d.Dst, d.Via, d.Node, err))
			continue
		}
		a.log.Info("route to a node's pods", "podCIDR", d.Dst, "via", d.Via, "node", d.Node)
	}
	for dst, r := range ours {
		if want[dst] {
			continue
		}
		if err := a.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", dst, err))
			continue
		}
		a.log.Info("removed the route of a node gone", "podCIDR", dst, "via", r.Gw)
	}
	for dst := range a.skipped {
		if !want[dst] {
			delete(a.skipped, dst)
		}
	}
	return errors.Join(errs...)
}

func (a *applier) skip(d Route, level slog.Level, why string) {
	if a.skipped[d.Dst] == why {
		return
	}
	a.skipped[d.Dst] = why
	a.log.Log(context.Background(), level, "no route to a node's pods", "podCIDR", d.Dst, "via", d.Via, "node", d.Node, "reason", why)
}

// list returns the main table's routes; a dump the kernel interrupted
// (the table changed meanwhile) is read again.
func (a *applier) list() ([]netlink.Route, error) {
	var err error
	for range 5 {
		var rs []netlink.Route
		rs, err = a.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err == nil {
			return rs, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list routes: %w", err)
}

// onLink returns the interface a gateway is directly reachable on.
func (a *applier) onLink(via netip.Addr) (int, bool) {
	rs, err := a.h.RouteGet(via.AsSlice())
	if err != nil || len(rs) == 0 || rs[0].Gw != nil || rs[0].LinkIndex == 0 {
		return 0, false
	}
	// RouteGet of one of our own addresses answers with the loopback.
	if rs[0].Type == unix.RTN_LOCAL {
		return 0, false
	}
	return rs[0].LinkIndex, true
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
