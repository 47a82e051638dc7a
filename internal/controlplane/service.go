package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/wire"
)

// Service mode (`wharf service`, docs/service.md): the server also serves
// wharf.dev/v1 and runs the cluster controller. The controller lives in
// internal/coe, which must not link the server; so the caller hands it in
// as Options.ServiceController (a wire.ServiceController) and this package
// only starts it with a wire.ServiceEnv.

// ServiceAddress is the first address of a provider network: the bridge's,
// where hosts reach the service.
func ServiceAddress(providerNetwork string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(providerNetwork)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("provider network %q: want an IPv4 CIDR of at least 4 addresses, e.g. %s", providerNetwork, wire.DefaultProviderNetwork)
	}
	return p.Masked().Addr().Next(), nil
}

// serviceDefaults fills the service's settings and adds the service
// address to the serving certificate's names.
func (o *Options) serviceDefaults() error {
	if !o.Service {
		return nil
	}
	if o.ProviderNetwork == "" {
		o.ProviderNetwork = wire.DefaultProviderNetwork
	}
	addr, err := ServiceAddress(o.ProviderNetwork)
	if err != nil {
		return err
	}
	o.TLSSANs = append(slices.Clip(o.TLSSANs), addr.String()) // not the caller's array
	if o.HostsDir == "" {
		o.HostsDir = filepath.Join(o.DataDir, "hosts")
	}
	return nil
}

// servedResources is what this server's API offers (nil: Builtin).
func (o *Options) servedResources() []*resources.Resource {
	if o.Service {
		return resources.Service()
	}
	return nil
}

// startServiceController starts the cluster controller of a service in g,
// with the controllers' client cfg.
func (s *Server) startServiceController(ctx context.Context, g *errgroup.Group, cfg *rest.Config) {
	o := s.opts
	if !o.Service || o.ServiceController == nil {
		return
	}
	addr, _ := ServiceAddress(o.ProviderNetwork) // checked by serviceDefaults
	port := s.listener.Addr().(*net.TCPAddr).Port
	env := wire.ServiceEnv{
		Logger:          s.log.With("component", "cluster-controller"),
		Loopback:        rest.CopyConfig(cfg),
		URL:             s.URL,
		CACertPEM:       s.ca.CertPEM,
		ProviderNetwork: o.ProviderNetwork,
		ServiceAddress:  addr.String(),
		RegistryURL:     "https://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)),
		HostsDir:        o.HostsDir,
		DataDir:         o.DataDir,
	}
	g.Go(func() error {
		if err := o.ServiceController(ctx, env); err != nil && ctx.Err() == nil {
			return fmt.Errorf("cluster controller: %w", err)
		}
		return nil
	})
}
