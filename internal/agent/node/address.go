package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
)

// DetectNodeIP returns the address to report as the node's InternalIP:
// the IPv4 address of the interface holding the default route, else the
// only non-loopback IPv4 address. Hosts with several candidates and no
// default route must be told (--node-ip).
func DetectNodeIP() (netip.Addr, error) {
	ifaces, err := interfaceAddrs()
	if err != nil {
		return netip.Addr{}, err
	}
	defaultIface := ""
	if f, err := os.Open("/proc/net/route"); err == nil {
		defaultIface = defaultRouteInterface(f)
		f.Close()
	}
	return pickNodeIP(ifaces, defaultIface)
}

// defaultRouteInterface returns the interface of the IPv4 default route
// in /proc/net/route content, "" if none.
func defaultRouteInterface(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

// pickNodeIP chooses among interfaces' addresses (name → addresses).
func pickNodeIP(ifaces map[string][]netip.Addr, defaultIface string) (netip.Addr, error) {
	usable := func(a netip.Addr) bool { return a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() }
	for _, a := range ifaces[defaultIface] {
		if usable(a) {
			return a, nil
		}
	}
	var all []netip.Addr
	for _, addrs := range ifaces {
		for _, a := range addrs {
			if usable(a) {
				all = append(all, a)
			}
		}
	}
	switch len(all) {
	case 0:
		return netip.Addr{}, errors.New("no IPv4 address besides loopback: pass --node-ip")
	case 1:
		return all[0], nil
	}
	return netip.Addr{}, fmt.Errorf("no default route and several addresses (%v): pass --node-ip", all)
}

// interfaceAddrs lists the addresses of the interfaces that are up.
func interfaceAddrs() (map[string][]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := map[string][]netip.Addr{}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out[i.Name] = append(out[i.Name], p.Addr().Unmap())
			}
		}
	}
	return out, nil
}
