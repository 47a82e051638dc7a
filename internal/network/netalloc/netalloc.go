// Package netalloc finds what is free on this machine's network (IPv4
// ranges, interface names, TCP ports) and says who holds what is not, so
// that any number of wharf services and `wharf up` state dirs share one
// machine without sharing a bridge, a range or a port.
//
// What is taken is read off the machine itself: the addresses and routes
// of every interface (a wharf bridge names its owner in its alias), the
// unreachable routes wharf holds for its ranges, and the DNS resolvers
// and default gateways the machine uses. A caller takes Lock around
// choosing and making its claim visible (creating the bridge or the route
// that holds it), so two processes never choose the same thing.
package netalloc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// LockFile is the machine-wide allocation lock.
const LockFile = "/run/wharf/netalloc.lock"

// Lock takes the machine-wide allocation lock, waiting for it until ctx
// ends; unlock releases it.
func Lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(LockFile), 0o755); err != nil {
		return nil, fmt.Errorf("allocation lock: %w", err)
	}
	f, err := os.OpenFile(LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("allocation lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("allocation lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("allocation lock %s: %w", LockFile, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Holder is something on the machine that holds a range: an address or a
// route of an interface, a route of wharf's, a resolver.
type Holder struct {
	Prefix netip.Prefix
	// Link is the interface's name ("" for routes without one).
	Link string
	// What says what it is, with the owner where known, e.g. "address
	// 10.123.0.1/24 on wharf-1a2b (wharf service /var/lib/wharf-service)".
	What string
}

// Snapshot is what the machine's network holds at one moment.
type Snapshot struct {
	Holders []Holder
	// Links maps interface names to their aliases.
	Links map[string]string
}

// Scan reads the machine's (the calling thread's network namespace's)
// interfaces, addresses, routes and resolvers.
func Scan() (*Snapshot, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	s := &Snapshot{Links: map[string]string{}}
	byIndex := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		s.Links[a.Name] = a.Alias
		byIndex[a.Index] = a.Name
	}
	describe := func(index int) string {
		name := byIndex[index]
		if alias := s.Links[name]; alias != "" {
			return name + " (" + alias + ")"
		}
		return name
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ip.IsLoopback() {
			continue
		}
		ones, _ := a.Mask.Size()
		s.Holders = append(s.Holders, Holder{
			Prefix: netip.PrefixFrom(ip, ones).Masked(), Link: byIndex[a.LinkIndex],
			What: fmt.Sprintf("address %s/%d on %s", ip, ones, describe(a.LinkIndex)),
		})
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Table == syscall.RT_TABLE_LOCAL {
			continue
		}
		if r.Gw != nil {
			if gw, ok := netip.AddrFromSlice(r.Gw.To4()); ok {
				s.Holders = append(s.Holders, Holder{Prefix: netip.PrefixFrom(gw, 32), Link: byIndex[r.LinkIndex],
					What: fmt.Sprintf("gateway %s on %s", gw, describe(r.LinkIndex))})
			}
		}
		dst, ok := prefixOf(r.Dst)
		if !ok || dst.Bits() == 0 {
			continue // the default route holds no range
		}
		h := Holder{Prefix: dst, Link: byIndex[r.LinkIndex]}
		switch {
		case r.Type == syscall.RTN_UNREACHABLE || r.Type == syscall.RTN_BLACKHOLE || r.Type == syscall.RTN_PROHIBIT:
			h.What = fmt.Sprintf("unreachable route to %s (proto %d)", dst, r.Protocol)
		case r.LinkIndex > 0:
			h.What = fmt.Sprintf("route to %s on %s", dst, describe(r.LinkIndex))
		default:
			h.What = fmt.Sprintf("route to %s", dst)
		}
		s.Holders = append(s.Holders, h)
	}
	for _, ns := range Resolvers("/etc/resolv.conf") {
		s.Holders = append(s.Holders, Holder{Prefix: netip.PrefixFrom(ns, 32), What: "DNS resolver " + ns.String() + " of this machine"})
	}
	return s, nil
}

// Resolvers returns the IPv4 nameservers of a resolv.conf.
func Resolvers(path string) []netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil && a.Is4() {
				out = append(out, a)
			}
		}
	}
	return out
}

// Overlapping returns the holders that overlap p, except those mine says
// are the caller's own.
func (s *Snapshot) Overlapping(p netip.Prefix, mine func(Holder) bool) []Holder {
	var out []Holder
	for _, h := range s.Holders {
		if h.Prefix.Overlaps(p) && (mine == nil || !mine(h)) {
			out = append(out, h)
		}
	}
	return out
}

// Free returns the first prefix of length bits inside pool that nothing
// holds, trying first first (if valid and inside pool).
func (s *Snapshot) Free(pool netip.Prefix, bits int, first netip.Prefix) (netip.Prefix, error) {
	pool = pool.Masked()
	if bits < pool.Bits() || bits > 32 || !pool.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("no /%d in %s", bits, pool)
	}
	if first.IsValid() && first.Bits() == bits && pool.Contains(first.Addr()) && len(s.Overlapping(first.Masked(), nil)) == 0 {
		return first.Masked(), nil
	}
	step := uint32(1) << (32 - bits)
	start := u32(pool.Addr())
	count := uint64(1) << (bits - pool.Bits())
	for i := uint64(0); i < count; i++ {
		p := netip.PrefixFrom(fromU32(start+uint32(i)*step), bits)
		if len(s.Overlapping(p, nil)) == 0 {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every /%d of %s is in use on this machine", bits, pool)
}

// LinkAlias says whether an interface exists and returns its alias.
func (s *Snapshot) LinkAlias(name string) (alias string, exists bool) {
	alias, exists = s.Links[name]
	return alias, exists
}

// Describe joins holders' descriptions for a message.
func Describe(hs []Holder) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.What
	}
	return strings.Join(parts, "; ")
}

// FreePort returns prefer if a TCP listener can bind host:prefer, else a
// port the kernel picks. The port is free when FreePort returns; the
// caller binds it soon after, under Lock against other wharf processes.
func FreePort(host string, prefer int) (int, error) {
	if prefer > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(prefer))); err == nil {
			l.Close()
			return prefer, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones).Masked(), true
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
