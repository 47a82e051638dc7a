package local

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// lockFile, in the state dir, serialises address allocation between
// providers over the same state (in one process or several).
const lockFile = ".lock"

// lockState takes the state dir's lock; flock conflicts between open
// files, so two Providers of one process exclude each other too.
func (p *Provider) lockState() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(p.cfg.StateDir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// hostLocks serialise the operations on one host (keyed by its state
// dir) across every Provider of the process.
var hostLocks sync.Map

func lockHost(dir string) (unlock func()) {
	m, _ := hostLocks.LoadOrStore(dir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// reserve allocates the lowest free address for a new host and writes its
// first record, both under the state lock: the records are the
// allocation table, so an address is taken exactly as long as a record
// holds it, across restarts of the service.
func (p *Provider) reserve(r *record, hostCIDR string) error {
	pool, err := p.pool(hostCIDR)
	if err != nil {
		return err
	}
	unlock, err := p.lockState()
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := p.allRecords()
	if err != nil {
		return err
	}
	used := map[netip.Addr]bool{p.bridgeAddr: true}
	for _, o := range recs {
		if a, err := netip.ParseAddr(o.Address); err == nil {
			used[a] = true
		}
	}
	addr, ok := netip.Addr{}, false
	last, lbs := lastAddr(p.network), lbPool(p.network)
	for a := pool.Masked().Addr(); pool.Contains(a); a = a.Next() {
		// Neither the network's own address nor its broadcast address,
		// nor one of the load balancer pool's.
		if a == p.network.Masked().Addr() || a == last || used[a] || lbs.Contains(a) {
			continue
		}
		addr, ok = a, true
		break
	}
	if !ok {
		return fmt.Errorf("no free address in %s for host %q", pool, r.Name)
	}
	r.Address = addr.String()
	dir := p.namesFor(r.Cluster, r.Name).dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("host state dir: %w", err)
	}
	return writeRecord(dir, r)
}

// pool is the range a host's address comes from: the provider network, or
// a cluster's host CIDR inside it.
func (p *Provider) pool(hostCIDR string) (netip.Prefix, error) {
	if hostCIDR == "" {
		return p.network, nil
	}
	c, err := netip.ParsePrefix(hostCIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("host CIDR %q: %w", hostCIDR, err)
	}
	c = c.Masked()
	if !c.Addr().Is4() || c.Bits() < p.network.Bits() || !p.network.Contains(c.Addr()) {
		return netip.Prefix{}, fmt.Errorf("host CIDR %s: not inside the provider network %s", c, p.network)
	}
	return c, nil
}
