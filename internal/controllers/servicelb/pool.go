package servicelb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ParsePool parses the CIDRs of a load balancer pool (--lb-cidr) and
// returns them sorted by address. They must be IPv4, without host bits
// (a typo such as 10.1.2.3/28 is refused rather than silently widened), and
// must not overlap: an address in two prefixes would be counted twice. No
// CIDRs is a valid, empty pool.
func ParsePool(s []string) ([]netip.Prefix, error) {
	var pool []netip.Prefix
	for _, raw := range s {
		p, err := netip.ParsePrefix(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("load balancer CIDR %q: %w", raw, err)
		}
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("load balancer CIDR %q: not an IPv4 prefix (the pool is IPv4 only)", raw)
		}
		if a := p.Addr(); a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() {
			return nil, fmt.Errorf("load balancer CIDR %q: not a unicast range a load balancer address may have (loopback, link-local or multicast)", raw)
		}
		if m := p.Masked(); m != p {
			return nil, fmt.Errorf("load balancer CIDR %q: host bits set (did you mean %s?)", raw, m)
		}
		pool = append(pool, p)
	}
	slices.SortFunc(pool, comparePrefixes)
	for i := range pool {
		for j := range i {
			if pool[j].Overlaps(pool[i]) {
				return nil, fmt.Errorf("load balancer CIDRs %s and %s overlap", pool[j], pool[i])
			}
		}
	}
	return pool, nil
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// usable reports whether a is an address of p that can be handed out:
// any of a /31 or /32, else neither the network nor the broadcast address.
func usable(p netip.Prefix, a netip.Addr) bool {
	if !p.Contains(a) {
		return false
	}
	if p.Bits() >= 31 {
		return true
	}
	return a != p.Addr() && a != broadcast(p)
}

// broadcast is the last address of the IPv4 prefix p.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(uint64(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// size is the number of usable addresses of the IPv4 prefix p.
func size(p netip.Prefix) uint64 {
	n := uint64(1) << (32 - p.Bits())
	if p.Bits() < 31 {
		n -= 2
	}
	return n
}

// pool is the set of addresses a Controller hands out, sorted by address.
type pool []netip.Prefix

func newPool(prefixes []netip.Prefix) pool {
	p := make(pool, 0, len(prefixes))
	for _, q := range prefixes {
		if q.IsValid() && q.Addr().Is4() {
			p = append(p, q.Masked())
		}
	}
	slices.SortFunc(p, comparePrefixes)
	return p
}

// contains reports whether a can be handed out.
func (p pool) contains(a netip.Addr) bool {
	for _, q := range p {
		if usable(q, a) {
			return true
		}
	}
	return false
}

// lowestFree returns the lowest usable address that held does not hold.
// It stops at the first free one, so it costs about as many steps as there
// are held addresses, however large the pool.
func (p pool) lowestFree(held map[netip.Addr]string) (netip.Addr, bool) {
	for _, q := range p {
		a := q.Addr()
		if q.Bits() < 31 {
			a = a.Next()
		}
		for ; a.IsValid() && usable(q, a); a = a.Next() {
			if _, ok := held[a]; !ok {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// size is the number of usable addresses.
func (p pool) size() uint64 {
	var n uint64
	for _, q := range p {
		n += size(q)
	}
	return n
}

func (p pool) String() string {
	s := make([]string, len(p))
	for i, q := range p {
		s[i] = q.String()
	}
	return strings.Join(s, ",")
}
