package podnet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/network/cniplugin"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/wire"
)

// inHost runs fn in the node's network namespace: sockets it opens and
// files of /proc/sys/net it writes are the node's.
func (s *Server) inHost(fn func() error) error {
	if s.cfg.HostNetNS == "" {
		return fn()
	}
	return nsrun.At(s.cfg.HostNetNS, fn)
}

// ensureBridge makes the bridge exist, up, with the pod CIDR's gateway
// address, and the node forward; it returns the bridge's MAC. The bridge
// gets a fixed random MAC: the kernel otherwise gives it the lowest of
// its ports' and changes it as pods come and go, and every pod's ARP
// entry for its gateway goes stale.
func (s *Server) ensureBridge() (mac string, err error) {
	prefix := s.podCIDR
	gw := netip.PrefixFrom(wire.PodGateway(prefix), prefix.Bits())
	err = s.inHost(func() error {
		br, err := netlink.LinkByName(s.cfg.Bridge)
		if notFound(err) {
			attrs := netlink.NewLinkAttrs()
			attrs.Name, attrs.MTU, attrs.HardwareAddr = s.cfg.Bridge, s.cfg.MTU, randomMAC()
			if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("create bridge %s: %w", s.cfg.Bridge, err)
			}
			br, err = netlink.LinkByName(s.cfg.Bridge)
		}
		if err != nil {
			return fmt.Errorf("bridge %s: %w", s.cfg.Bridge, err)
		}
		if _, ok := br.(*netlink.Bridge); !ok {
			return fmt.Errorf("%s is a %s, not a bridge", s.cfg.Bridge, br.Type())
		}
		family := netlink.FAMILY_V4
		if prefix.Addr().Is6() {
			family = netlink.FAMILY_V6
			// Routes on the bridge are ours, not router advertisements'.
			if err := sysctl("net/ipv6/conf/"+s.cfg.Bridge+"/accept_ra", "0"); err != nil {
				return err
			}
		}
		addrs, err := netlink.AddrList(br, family)
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", s.cfg.Bridge, err)
		}
		if !hasAddr(addrs, gw) {
			if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw)}); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("address %s on %s: %w", gw, s.cfg.Bridge, err)
			}
		}
		if err := netlink.LinkSetUp(br); err != nil {
			return fmt.Errorf("bridge %s up: %w", s.cfg.Bridge, err)
		}
		forwarding := "net/ipv4/ip_forward"
		if prefix.Addr().Is6() {
			forwarding = "net/ipv6/conf/all/forwarding"
		}
		if err := sysctl(forwarding, "1"); err != nil {
			return err
		}
		if svc := s.cfg.ServiceCIDR; svc.IsValid() && svc.Addr().Is6() == prefix.Addr().Is6() {
			// The node's own connections to service addresses: a route
			// to pick (the bridge's address as source), then the proxy's
			// DNAT in the output hook. Without it, the guard's
			// unreachable route refuses them before any rule runs.
			r := &netlink.Route{Dst: ipNet(svc.Masked()), LinkIndex: br.Attrs().Index, Scope: netlink.SCOPE_LINK, Src: gw.Addr().AsSlice()}
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("route %s via %s: %w", svc, s.cfg.Bridge, err)
			}
		}
		mac = br.Attrs().HardwareAddr.String()
		return nil
	})
	return mac, err
}

// errNoBridge: the node's bridge is gone.
var errNoBridge = errors.New("no such bridge")

// podLink is what attach made.
type podLink struct {
	host   string // the host end of the veth pair, a port of the bridge
	podMAC string
}

// attach connects the sandbox: a veth pair made with one netlink request
// (host end up and on the bridge, the other end created in the sandbox's
// namespace as req.IfName), then, in the sandbox, the address, the link
// up and the default route via the gateway. It runs in the node's
// namespace.
func (s *Server) attach(req cniplugin.Request, addr netip.Prefix, gw netip.Addr) (podLink, error) {
	link := podLink{host: hostVeth(req.ContainerID, req.IfName)}
	br, err := netlink.LinkByName(s.cfg.Bridge)
	if notFound(err) {
		return link, fmt.Errorf("bridge %s: %w", s.cfg.Bridge, errNoBridge)
	}
	if err != nil {
		return link, fmt.Errorf("bridge %s: %w", s.cfg.Bridge, err)
	}
	ns, err := netns.GetFromPath(req.NetNS)
	if err != nil {
		return link, fmt.Errorf("sandbox netns %s: %w", req.NetNS, err)
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex, attrs.Flags = link.host, s.cfg.MTU, br.Attrs().Index, net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: req.IfName, PeerNamespace: netlink.NsFd(ns), PeerTxQLen: -1}
	err = netlink.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		// Left by an ADD that failed half-way: start over.
		if derr := deleteVeth(link.host); derr != nil {
			return link, derr
		}
		err = netlink.LinkAdd(veth)
	}
	if err != nil {
		return link, fmt.Errorf("veth %s: %w", link.host, err)
	}
	// Hairpin: a pod reaches itself through its hostPort or a service.
	if err := netlink.LinkSetHairpin(veth, true); err != nil {
		return link, fmt.Errorf("hairpin on %s: %w", link.host, err)
	}
	err = nsrun.In(ns, func() error {
		l, err := netlink.LinkByName(req.IfName)
		if err != nil {
			return err
		}
		if addr.Addr().Is6() {
			// The address is ours alone: no duplicate address detection.
			if err := sysctl("net/ipv6/conf/"+req.IfName+"/accept_dad", "0"); err != nil {
				return err
			}
		} else if err := sysctl("net/ipv4/conf/"+req.IfName+"/arp_notify", "1"); err != nil {
			// A gratuitous ARP when the link goes up: neighbours that knew
			// the address under another MAC learn the new one.
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
			return fmt.Errorf("address %s: %w", addr, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", req.IfName, err)
		}
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if addr.Addr().Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		route := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(def), Gw: gw.AsSlice()}
		if err := netlink.RouteAdd(route); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
		link.podMAC = l.Attrs().HardwareAddr.String()
		return nil
	})
	if err != nil {
		return link, fmt.Errorf("sandbox side of %s: %w", link.host, err)
	}
	return link, nil
}

// result is the CNI 1.0.0 result of an ADD: the bridge, the veth's host
// end and the sandbox's interface, whose address containerd reports as
// the pod IP.
func (s *Server) result(req cniplugin.Request, link podLink, addr netip.Prefix, gw netip.Addr) ([]byte, error) {
	s.mu.Lock()
	bridgeMAC := s.bridgeMAC
	s.mu.Unlock()
	type iface struct {
		Name    string `json:"name"`
		MAC     string `json:"mac,omitempty"`
		Sandbox string `json:"sandbox,omitempty"`
	}
	def := "0.0.0.0/0"
	if addr.Addr().Is6() {
		def = "::/0"
	}
	return json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"interfaces": []iface{{Name: s.cfg.Bridge, MAC: bridgeMAC}, {Name: link.host}, {Name: req.IfName, MAC: link.podMAC, Sandbox: req.NetNS}},
		"ips":        []map[string]any{{"interface": 2, "address": addr.String(), "gateway": gw.String()}},
		"routes":     []map[string]string{{"dst": def, "gw": gw.String()}},
		"dns":        map[string]any{},
	})
}

// hostVeth names the host end of a sandbox interface's veth pair: the
// same name for every request about it, so DEL needs no state.
func hostVeth(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "veth" + hex.EncodeToString(sum[:5])
}

// deleteVeth deletes a veth pair by its host end; both ends go. A pair
// already gone (with its sandbox's namespace) is fine.
func deleteVeth(name string) error {
	l, err := netlink.LinkByName(name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("veth %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", name, err)
	}
	return nil
}

// sysctl writes a /proc/sys/net value of the calling thread's namespace.
func sysctl(name, value string) error {
	if err := os.WriteFile("/proc/sys/"+name, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", name, err)
	}
	return nil
}

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func hasAddr(addrs []netlink.Addr, want netip.Prefix) bool {
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ones, _ := a.Mask.Size()
			if netip.PrefixFrom(ip.Unmap(), ones) == want {
				return true
			}
		}
	}
	return false
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// randomMAC is a random unicast, locally administered address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}
