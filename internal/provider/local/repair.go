package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/provider"
)

// RepairNetwork makes the provider network whole (EnsureNetwork) and
// rewires every host that has a namespace: its veth back on the bridge
// (deleting a bridge frees its ports, it does not delete them), its
// address and routes. A service calls it when it starts, for the hosts
// it adopts, and Watch calls it when the bridge goes. A host without a
// namespace is left to CreateHost.
func (p *Provider) RepairNetwork(ctx context.Context) error {
	if err := p.EnsureNetwork(ctx); err != nil {
		return err
	}
	recs, err := p.allRecords()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range recs {
		n := p.namesFor(r.Cluster, r.Name)
		if _, err := os.Stat(n.netnsPath()); err != nil {
			continue
		}
		addr, err := netip.ParseAddr(r.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %q: recorded address: %w", r.Name, err))
			continue
		}
		unlock := lockHost(n.dir)
		err = p.setupHostNetwork(n, addr, r.PID > 0)
		unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("host %q: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ResumeHosts starts again, from their records, the hosts whose process
// died without a PowerOff (a machine restart, a killed process), as a
// hypervisor resumes the guests that were running when its host went
// down; hosts powered off stay off. A service calls it when it starts,
// after RepairNetwork. It returns the hosts it resumed.
func (p *Provider) ResumeHosts(ctx context.Context) ([]string, error) {
	recs, err := p.allRecords()
	if err != nil {
		return nil, err
	}
	var resumed []string
	var errs []error
	for _, r := range recs {
		if r.PID <= 0 || r.alive() {
			continue
		}
		spec := provider.HostSpec{Cluster: r.Cluster, Name: r.Name, Role: r.Role,
			CPU: r.Spec.CPU, Memory: r.Spec.Memory, HostCIDR: r.Spec.HostCIDR, Args: r.Spec.Args}
		if _, err := p.CreateHost(ctx, spec); err != nil {
			errs = append(errs, fmt.Errorf("resume host %q of cluster %s: %w", r.Name, r.Cluster.Key(), err))
			continue
		}
		resumed = append(resumed, r.Cluster.Key()+"/"+r.Name)
	}
	return resumed, errors.Join(errs...)
}

// Watch repairs the network (RepairNetwork) whenever the bridge is
// deleted, until ctx ends: hosts otherwise stay unreachable ("no route to
// host") until the service restarts.
func (p *Provider) Watch(ctx context.Context) error {
	for ctx.Err() == nil {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) { p.log.Warn("watching the provider bridge", "err", err) },
		}); err != nil {
			return fmt.Errorf("watch links: %w", err)
		}
		p.watchUpdates(ctx, updates)
		close(done)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// watchUpdates handles link updates until ctx ends or the subscription
// breaks (its channel closes).
func (p *Provider) watchUpdates(ctx context.Context, updates <-chan netlink.LinkUpdate) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			if u.Header.Type != unix.RTM_DELLINK || u.Link == nil || u.Link.Attrs().Name != p.cfg.Bridge {
				continue
			}
			p.log.Warn("the provider bridge was deleted: repairing the network", "bridge", p.cfg.Bridge)
			if err := p.RepairNetwork(ctx); err != nil {
				p.log.Error("repairing the provider network", "err", err)
			}
		}
	}
}
