package podnet

import (
	"context"
	"net/netip"
	"strings"

	"wharf.dev/wharf/internal/network/cni"
)

func (s *Server) syncPorts(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncPortsLocked(ctx)
}

// syncPortsLocked rewrites the hostPort chains from the allocations if
// they changed.
func (s *Server) syncPortsLocked(ctx context.Context) error {
	if !s.portsDirty {
		return nil
	}
	var ports []cni.HostPort
	for _, al := range s.ipam.all() {
		for _, p := range al.Ports {
			hp := cni.HostPort{
				Protocol: strings.ToLower(p.Protocol), HostPort: uint16(p.HostPort), PodIP: al.IP, ContainerPort: uint16(p.ContainerPort),
			}
			if hp.Protocol == "" {
				hp.Protocol = "tcp"
			}
			if ip, err := netip.ParseAddr(p.HostIP); err == nil {
				hp.HostIP = ip
			}
			ports = append(ports, hp)
		}
	}
	if len(ports) > 0 || s.portsWritten {
		err := s.inHost(func() error {
			if len(ports) > 0 && s.podCIDR.Addr().Is4() {
				// 127.0.0.1 as a source, DNATed to a pod, must be routed out
				// of the bridge (the portmap plugin did the same).
				if err := sysctl("net/ipv4/conf/"+s.cfg.Bridge+"/route_localnet", "1"); err != nil {
					return err
				}
			}
			return cni.SyncHostPorts(ctx, s.cfg.Bridge, s.podCIDR.String(), ports)
		})
		if err != nil {
			return err
		}
		s.portsWritten = true
	}
	s.portsDirty = false
	return nil
}

func hasPorts(als []*allocation) bool {
	for _, al := range als {
		if len(al.Ports) > 0 {
			return true
		}
	}
	return false
}
