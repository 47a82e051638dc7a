// Package vip holds a cluster's API address on one master at a time: the
// address is added to the interface that carries the master's own
// address, and announced with gratuitous ARP so that neighbours (agents,
// the cluster service, the operator's machine) send to the new holder at
// once; connections to the old holder then meet a reset, not a timeout.
// Who holds it is the caller's decision (the etcd leader's server,
// docs/ha.md); a holder whose link goes down (a power cut) answers nothing.
package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Address is a virtual address on the link that has an address of its
// network.
type Address struct {
	log  *slog.Logger
	addr netip.Addr
	// link carries the address, as a /32: it never adds a route.
	link netlink.Link
}

// New finds the link carrying an address of the same network as addr.
func New(logger *slog.Logger, addr netip.Addr) (*Address, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("virtual address %s: only IPv4 is supported", addr)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("virtual address %s: list links: %w", addr, err)
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IPNet == nil {
				continue
			}
			ones, _ := a.Mask.Size()
			ip, _ := netip.AddrFromSlice(a.IP.To4())
			if ones < 32 && netip.PrefixFrom(ip, ones).Masked().Contains(addr) {
				return &Address{log: logger, addr: addr, link: l}, nil
			}
		}
	}
	return nil, fmt.Errorf("virtual address %s: no interface is on its network", addr)
}

func (a *Address) netlinkAddr() *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.addr.AsSlice(), Mask: net.CIDRMask(32, 32)}, Label: ""}
}

// Hold adds the address and announces it.
func (a *Address) Hold() error {
	err := netlink.AddrAdd(a.link, a.netlinkAddr())
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add virtual address %s to %s: %w", a.addr, a.link.Attrs().Name, err)
	}
	if err := a.Announce(); err != nil {
		return err
	}
	a.log.Info("holding the virtual address", "address", a.addr, "link", a.link.Attrs().Name)
	return nil
}

// Release removes the address; not holding it is not an error.
func (a *Address) Release() error {
	err := netlink.AddrDel(a.link, a.netlinkAddr())
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove virtual address %s from %s: %w", a.addr, a.link.Attrs().Name, err)
	}
	if err == nil {
		a.log.Info("released the virtual address", "address", a.addr)
	}
	return nil
}

// Held reports whether the link has the address now.
func (a *Address) Held() bool {
	addrs, err := netlink.AddrList(a.link, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP.To4()); ok && ip == a.addr {
			return true
		}
	}
	return false
}

// Announce broadcasts a gratuitous ARP request for the address from the
// link's hardware address.
func (a *Address) Announce() error {
	mac := a.link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return nil // not Ethernet (loopback in tests): nobody to tell
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("announce %s: %w", a.addr, err)
	}
	defer unix.Close(fd)
	frame := GratuitousARP(mac, a.addr)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: a.link.Attrs().Index, Halen: 6}
	copy(to.Addr[:], broadcast)
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		return fmt.Errorf("announce %s on %s: %w", a.addr, a.link.Attrs().Name, err)
	}
	return nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// GratuitousARP is an Ethernet frame with an ARP request for ip from ip
// (RFC 5227's announcement): neighbours that know ip update its hardware
// address.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 0, 42)
	f = append(f, broadcast...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = binary.BigEndian.AppendUint16(f, 1)      // Ethernet
	f = binary.BigEndian.AppendUint16(f, 0x0800) // IPv4
	f = append(f, 6, 4)
	f = binary.BigEndian.AppendUint16(f, 1) // request
	ip4 := ip.As4()
	f = append(f, mac...)
	f = append(f, ip4[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, ip4[:]...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
