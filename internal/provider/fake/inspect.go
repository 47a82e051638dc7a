package fake

import (
	"maps"
	"slices"
	"strings"

	"wharf.dev/wharf/internal/provider"
)

// What tests look at: a provider's whole state, beyond one cluster's view.

// Spec returns the spec a host was made with, $(HOST_IP) and $(STATE_DIR)
// replaced in its Args.
func (p *Provider) Spec(cluster provider.ClusterRef, name string) (provider.HostSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec, ok := p.hosts[hostKey(cluster, name)]
	if !ok {
		return provider.HostSpec{}, false
	}
	s := rec.spec
	s.Args = slices.Clone(s.Args)
	s.Files = maps.Clone(s.Files)
	return s, true
}

// All returns every host of every cluster, by cluster key and name: a
// test that deleted everything expects none.
func (p *Provider) All() []provider.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]provider.Host, 0, len(p.hosts))
	for _, rec := range p.hosts {
		out = append(out, rec.h)
	}
	slices.SortFunc(out, func(a, b provider.Host) int {
		if c := strings.Compare(a.Cluster.Key(), b.Cluster.Key()); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Creates reports how many times CreateHost was called for a host name.
func (p *Provider) Creates(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.creates[name]
}
