package local

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"wharf.dev/wharf/internal/network/nsrun"
)

// setupHostNetwork gives a host its namespace, wired to the bridge: a veth
// pair (eth0 inside) with the host's address, loopback up, the default
// route via the bridge (the service address), forwarding on and reverse
// path filtering off (pods of other hosts arrive from host-gw routes with
// source addresses no route of ours points back to). Every step checks
// first, so it also completes a host a crash left half made. The veth's
// root end is up only for a powered host: a powered-off one answers
// nothing, not even ARP for its addresses, as a machine without power.
func (p *Provider) setupHostNetwork(n names, addr netip.Addr, powered bool) error {
	ns, err := ensureNetNS(n)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netns %s: netlink: %w", n.netns, err)
	}
	defer h.Close()

	br, err := netlink.LinkByName(p.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err)
	}
	if err := p.ensureVeth(n, h, ns, br, powered); err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns %s: lo: %w", n.netns, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns %s: lo up: %w", n.netns, err)
	}
	eth, err := h.LinkByName(peerName)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", n.netns, peerName, err)
	}
	// The whole provider network is on-link: hosts talk to each other
	// directly over the bridge, not through the service.
	if err := h.AddrReplace(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, p.network.Bits()))}); err != nil {
		return fmt.Errorf("netns %s: address %s: %w", n.netns, addr, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("netns %s: %s up: %w", n.netns, peerName, err)
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: p.bridgeAddr.AsSlice()}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("netns %s: default route via %s: %w", n.netns, p.bridgeAddr, err)
	}
	return nsrun.In(ns, func() error {
		for file, val := range map[string]string{
			"/proc/sys/net/ipv4/ip_forward":                      "1",
			"/proc/sys/net/ipv4/conf/all/rp_filter":              "0",
			"/proc/sys/net/ipv4/conf/default/rp_filter":          "0",
			"/proc/sys/net/ipv4/conf/" + peerName + "/rp_filter": "0",
		} {
			// /proc/sys/net is the namespace of the thread opening it.
			if err := os.WriteFile(file, []byte(val), 0o644); err != nil {
				return fmt.Errorf("netns %s: sysctl: %w", n.netns, err)
			}
		}
		return nil
	})
}

// ensureVeth makes the veth pair: n.veth on the bridge in the root
// namespace, eth0 in the host's. A root end whose peer is missing (or
// elsewhere) is replaced.
func (p *Provider) ensureVeth(n names, h *netlink.Handle, ns netns.NsHandle, br netlink.Link, up bool) error {
	root, err := netlink.LinkByName(n.veth)
	if err == nil {
		if _, perr := h.LinkByName(peerName); perr == nil {
			if root.Attrs().MasterIndex != br.Attrs().Index {
				if err := netlink.LinkSetMaster(root, br); err != nil {
					return fmt.Errorf("veth %s: bridge: %w", n.veth, err)
				}
			}
			return setLinkPower(root, up)
		}
		if err := netlink.LinkDel(root); err != nil {
			return fmt.Errorf("veth %s: replace: %w", n.veth, err)
		}
	} else if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return fmt.Errorf("veth %s: %w", n.veth, err)
	}
	// A stray eth0 (its root end gone with a crash) would block the new one.
	if stray, err := h.LinkByName(peerName); err == nil {
		h.LinkDel(stray)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.veth
	attrs.MasterIndex = br.Attrs().Index
	attrs.MTU = br.Attrs().MTU
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peerName, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", n.veth, err)
	}
	return setLinkPower(veth, up)
}

// setLinkPower sets a host's veth root end up or down.
func setLinkPower(l netlink.Link, up bool) error {
	set, what := netlink.LinkSetUp, "up"
	if !up {
		set, what = netlink.LinkSetDown, "down"
	}
	if err := set(l); err != nil {
		return fmt.Errorf("veth %s: %s: %w", l.Attrs().Name, what, err)
	}
	return nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	mask := net.CIDRMask(p.Bits(), 32)
	for i := range a {
		a[i] |= ^mask[i]
	}
	return netip.AddrFrom4(a)
}
