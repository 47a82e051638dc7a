package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"wharf.dev/wharf/internal/network/cniplugin"
	"wharf.dev/wharf/internal/wire"
)

// allocation is one sandbox interface's address, and what else was set up
// for it; a file in the data dir keeps it across agent restarts.
type allocation struct {
	IP          netip.Addr              `json:"ip"`
	ContainerID string                  `json:"containerID"`
	IfName      string                  `json:"ifName"`
	Pod         string                  `json:"pod,omitempty"` // namespace/name, for people
	Created     time.Time               `json:"created"`
	Ports       []cniplugin.PortMapping `json:"portMappings,omitempty"`
}

// ipam hands out the addresses of a pod CIDR: the first one is the
// bridge's (the pods' gateway), the last one of an IPv4 range is its
// broadcast. Addresses go round-robin, so that a freed one is not reused
// at once (the neighbours' ARP caches still hold the old pod's MAC).
// It is not safe for concurrent use; Server serialises it.
type ipam struct {
	dir    string
	prefix netip.Prefix
	byIP   map[netip.Addr]*allocation
	last   netip.Addr
}

// loadIPAM reads the allocations kept in dir. Files that do not parse
// (written when the agent died in the middle of an ADD, which then
// failed) are removed.
func loadIPAM(dir string, prefix netip.Prefix) (*ipam, []error) {
	a := &ipam{dir: dir, prefix: prefix.Masked(), byIP: map[netip.Addr]*allocation{}}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return a, []error{fmt.Errorf("pod network state %s: %w", dir, err)}
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		var al allocation
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &al)
		}
		if err == nil && (!al.IP.IsValid() || al.IP.String() != e.Name() || al.ContainerID == "") {
			err = errors.New("not an allocation")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pod network state %s: %w (removed)", path, err))
			os.Remove(path)
			continue
		}
		a.byIP[al.IP] = &al
		if al.Created.After(a.createdOf(a.last)) {
			a.last = al.IP
		}
	}
	return a, errs
}

func (a *ipam) createdOf(ip netip.Addr) time.Time {
	if al := a.byIP[ip]; al != nil {
		return al.Created
	}
	return time.Time{}
}

// gateway is the bridge's address.
func (a *ipam) gateway() netip.Addr { return wire.PodGateway(a.prefix) }

// find returns the allocation of a sandbox interface, nil if none.
func (a *ipam) find(containerID, ifName string) *allocation {
	for _, al := range a.byIP {
		if al.ContainerID == containerID && al.IfName == ifName {
			return al
		}
	}
	return nil
}

// allocate gives al the next free address and records it on disk.
func (a *ipam) allocate(al allocation) (*allocation, error) {
	first := a.gateway().Next()
	start := first
	if a.last.IsValid() && a.prefix.Contains(a.last) {
		start = a.next(a.last, first)
	}
	for ip := start; ; {
		if _, used := a.byIP[ip]; !used {
			al.IP = ip
			if err := a.write(&al); err != nil {
				return nil, err
			}
			a.byIP[ip] = &al
			a.last = ip
			return &al, nil
		}
		if ip = a.next(ip, first); ip == start {
			return nil, fmt.Errorf("no free address in %s (%d in use)", a.prefix, len(a.byIP))
		}
	}
}

// next is the address after ip, back to first past the end of the range.
func (a *ipam) next(ip, first netip.Addr) netip.Addr {
	n := ip.Next()
	if !n.IsValid() || !a.prefix.Contains(n) || (n.Is4() && !a.prefix.Contains(n.Next())) {
		return first // past the end, or n is the IPv4 broadcast address
	}
	return n
}

// release forgets an allocation and its file.
func (a *ipam) release(al *allocation) error {
	delete(a.byIP, al.IP)
	if err := os.Remove(filepath.Join(a.dir, al.IP.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release %s: %w", al.IP, err)
	}
	return nil
}

func (a *ipam) write(al *allocation) error {
	data, err := json.Marshal(al)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return fmt.Errorf("pod network state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(a.dir, al.IP.String()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("reserve %s: %w", al.IP, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("reserve %s: %w", al.IP, err)
	}
	return nil
}

// all lists the allocations.
func (a *ipam) all() []*allocation {
	out := make([]*allocation, 0, len(a.byIP))
	for _, al := range a.byIP {
		out = append(out, al)
	}
	return out
}
