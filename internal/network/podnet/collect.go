package podnet

import (
	"context"
	"errors"
	"time"
)

// collectPeriod is how often allocations whose sandbox is gone are
// collected.
const collectPeriod = time.Minute

// collectLoop collects now and then, from the first Configure on.
func (s *Server) collectLoop(ctx context.Context) {
	if s.cfg.Sandboxes == nil {
		return
	}
	t := time.NewTicker(collectPeriod)
	defer t.Stop()
	for {
		if err := s.Collect(ctx); err != nil {
			s.log.Warn("pod network: collecting addresses of gone sandboxes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Collect releases the allocations, older than CollectAge, of sandboxes
// the runtime does not have.
func (s *Server) Collect(ctx context.Context) error {
	s.mu.Lock()
	configured := s.ipam != nil
	s.mu.Unlock()
	if !configured || s.cfg.Sandboxes == nil {
		return nil
	}
	known, err := s.cfg.Sandboxes(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var gone []*allocation
	for _, al := range s.ipam.all() {
		if !known[al.ContainerID] && time.Since(al.Created) > s.cfg.CollectAge {
			gone = append(gone, al)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, al := range gone {
		s.log.Info("pod network: releasing the address of a gone sandbox", "ip", al.IP, "container", short(al.ContainerID), "pod", al.Pod)
		errs = append(errs, s.inHost(func() error { return deleteVeth(hostVeth(al.ContainerID, al.IfName)) }))
		errs = append(errs, s.forget(ctx, al.ContainerID, al.IfName))
	}
	return errors.Join(errs...)
}
