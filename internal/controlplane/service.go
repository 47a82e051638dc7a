package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"

	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/resources"
)

// Service mode (`wharf service`, docs/service.md): the server also serves
// wharf.dev/v1 and runs the cluster controller. The controller lives in
// internal/coe, which builds on this package; so the caller hands it in
// as Options.ServiceController and this package only starts it.

// DefaultProviderNetwork is the local provider's host network.
const DefaultProviderNetwork = "10.123.0.0/24"

// ServiceEnv is what the cluster controller gets from the service it runs in.
type ServiceEnv struct {
	Logger *slog.Logger
	// Loopback is the in-process client configuration (system:masters).
	Loopback *rest.Config
	// URL is where clients on this machine reach the service.
	URL string
	// CACertPEM is the service's CA: workers trust its registry with it.
	CACertPEM []byte
	// ProviderNetwork is the local provider's network; ServiceAddress its
	// first address, where hosts reach the service, in the serving certificate.
	ProviderNetwork string
	ServiceAddress  string
	// RegistryURL is the service's image registry as hosts reach it
	// (https://<service address>:<port>).
	RegistryURL string
	// HostsDir is where providers keep hosts (S/hosts).
	HostsDir string
}

// ServiceController runs the cluster controller until ctx ends; an error
// stops the service. The lead wires coe.New(...).Run here.
type ServiceController func(ctx context.Context, env ServiceEnv) error

// ServiceAddress is the first address of a provider network: the bridge's,
// where hosts reach the service.
func ServiceAddress(providerNetwork string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(providerNetwork)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("provider network %q: want an IPv4 CIDR of at least 4 addresses, e.g. %s", providerNetwork, DefaultProviderNetwork)
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
		o.ProviderNetwork = DefaultProviderNetwork
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

// startServiceController starts the cluster controller of a service.
func (s *Server) startServiceController(ctx context.Context) {
	o := s.opts
	if !o.Service || o.ServiceController == nil {
		return
	}
	addr, _ := ServiceAddress(o.ProviderNetwork) // checked by serviceDefaults
	port := s.listener.Addr().(*net.TCPAddr).Port
	env := ServiceEnv{
		Logger:          s.log.With("component", "cluster-controller"),
		Loopback:        rest.CopyConfig(s.Loopback),
		URL:             s.URL,
		CACertPEM:       s.ca.CertPEM,
		ProviderNetwork: o.ProviderNetwork,
		ServiceAddress:  addr.String(),
		RegistryURL:     "https://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)),
		HostsDir:        o.HostsDir,
	}
	s.goRun(func() error {
		if err := o.ServiceController(ctx, env); err != nil && ctx.Err() == nil {
			return fmt.Errorf("cluster controller: %w", err)
		}
		return nil
	})
}
