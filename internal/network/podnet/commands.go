package podnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"wharf.dev/wharf/internal/network/cniplugin"
)

// add gives the sandbox its interface and address, and publishes its
// hostPorts. On failure it undoes what it did.
func (s *Server) add(ctx context.Context, req cniplugin.Request, conf cniplugin.NetConf) (result []byte, err error) {
	if conf.CNIVersion != "1.0.0" {
		return nil, fmt.Errorf("CNI version %q: the pod network speaks 1.0.0", conf.CNIVersion)
	}
	al, prefix, err := s.reserve(req, conf.RuntimeConfig.PortMappings)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.forget(ctx, req.ContainerID, req.IfName)
			s.inHost(func() error { return deleteVeth(hostVeth(req.ContainerID, req.IfName)) })
		}
	}()
	addr, gw := netip.PrefixFrom(al.IP, prefix.Bits()), prefix.Addr().Next()
	var link podLink
	attach := func() error {
		return s.inHost(func() (err error) {
			link, err = s.attach(req, addr, gw)
			return err
		})
	}
	err = attach()
	if errors.Is(err, errNoBridge) {
		// Deleted behind the agent's back: made again, as the bridge
		// plugin did on every ADD.
		if err = s.remakeBridge(); err == nil {
			err = attach()
		}
	}
	if err != nil {
		return nil, err
	}
	if len(al.Ports) > 0 {
		if err = s.syncPorts(ctx); err != nil {
			return nil, err
		}
	}
	return s.result(req, link, addr, gw)
}

func (s *Server) remakeBridge() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mac, err := s.ensureBridge()
	if err == nil {
		s.bridgeMAC = mac
	}
	return err
}

// reserve allocates the sandbox's address (the one it has, for a repeated
// ADD).
func (s *Server) reserve(req cniplugin.Request, ports []cniplugin.PortMapping) (*allocation, netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil {
		return nil, netip.Prefix{}, errors.New("the node has no pod CIDR yet")
	}
	if al := s.ipam.find(req.ContainerID, req.IfName); al != nil {
		return al, s.podCIDR, nil
	}
	al, err := s.ipam.allocate(allocation{
		ContainerID: req.ContainerID, IfName: req.IfName, Pod: podOf(req.Args), Created: time.Now(), Ports: ports,
	})
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	if len(ports) > 0 {
		s.portsDirty = true
	}
	return al, s.podCIDR, nil
}

// del undoes add; what is already gone is fine.
func (s *Server) del(ctx context.Context, req cniplugin.Request) error {
	errs := []error{s.inHost(func() error { return deleteVeth(hostVeth(req.ContainerID, req.IfName)) })}
	errs = append(errs, s.forget(ctx, req.ContainerID, req.IfName))
	return errors.Join(errs...)
}

// forget releases a sandbox interface's address and its hostPorts.
func (s *Server) forget(ctx context.Context, containerID, ifName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil {
		return nil
	}
	al := s.ipam.find(containerID, ifName)
	if al == nil {
		return nil
	}
	if err := s.ipam.release(al); err != nil {
		return err
	}
	if len(al.Ports) > 0 {
		s.portsDirty = true
		return s.syncPortsLocked(ctx)
	}
	return nil
}

func (s *Server) check(req cniplugin.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil || s.ipam.find(req.ContainerID, req.IfName) == nil {
		return fmt.Errorf("no address for %s", short(req.ContainerID))
	}
	return nil
}
