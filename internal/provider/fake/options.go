package fake

import (
	"context"
	"net/netip"

	"wharf.dev/wharf/internal/provider"
)

// Runtime runs a host's wharf process. Start gets the spec with
// $(HOST_IP) and $(STATE_DIR) already replaced; it returns once the
// process runs, and stop ends it (and returns once it ended). ctx bounds
// the start only: the process outlives the CreateHost call that started it.
type Runtime interface {
	Start(ctx context.Context, host provider.Host, spec provider.HostSpec) (stop func(), err error)
}

// RuntimeFunc adapts a function to Runtime.
type RuntimeFunc func(ctx context.Context, host provider.Host, spec provider.HostSpec) (func(), error)

// Start calls f.
func (f RuntimeFunc) Start(ctx context.Context, host provider.Host, spec provider.HostSpec) (func(), error) {
	return f(ctx, host, spec)
}

// Option configures a Provider.
type Option func(*Provider)

// WithName sets what Name returns (default "fake").
func WithName(name string) Option { return func(p *Provider) { p.name = name } }

// WithNetwork sets the network hosts' addresses come from: its first
// address is the service address, hosts get the next free ones (default
// 192.0.2.0/24, a documentation range nothing answers on).
func WithNetwork(prefix netip.Prefix) Option {
	return func(p *Provider) { p.network = prefix.Masked() }
}

// WithStateRoot keeps each host's state dir under root (root/<cluster
// key>/<host>) and writes the spec's Files there, as a real provider does.
// Without it state dirs are made-up paths and Files stay in memory.
func WithStateRoot(root string) Option { return func(p *Provider) { p.stateRoot = root } }

// WithRuntime runs something on each host; without it a host is only a record.
func WithRuntime(r Runtime) Option { return func(p *Provider) { p.runtime = r } }
