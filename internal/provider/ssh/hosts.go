package ssh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"wharf.dev/wharf/internal/provider"
)

// listTimeout bounds the liveness check of one host: an unreachable
// machine makes its host not running, not ListHosts slow. A new ssh
// session's key exchange on a loaded machine (load 10 on two cores) took
// over 5 s and reported a running host as stopped.
const listTimeout = 15 * time.Second

// ListHosts returns the cluster's hosts from the records; each is asked
// over ssh whether its process runs (all at once).
func (p *Provider) ListHosts(ctx context.Context, cluster provider.ClusterRef) ([]provider.Host, error) {
	recs, err := p.store.list(&cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster.Key(), err)
	}
	hosts := make([]provider.Host, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		hosts[i] = p.hostOf(rec)
		wg.Add(1)
		go func() {
			defer wg.Done()
			running, err := p.alive(ctx, rec)
			if err != nil {
				p.log.Debug("liveness check failed", "host", rec.Name, "machine", rec.Machine, "err", err)
			}
			hosts[i].Running = running
		}()
	}
	wg.Wait()
	return hosts, ctx.Err()
}

// alive asks the machine whether the host's process runs.
func (p *Provider) alive(ctx context.Context, rec record) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	l := p.layoutOf(rec.Cluster, rec.Name)
	out, err := p.run(ctx, rec.Machine, "liveness check", prelude(l)+"alive && echo yes || echo no\n", nil)
	return strings.TrimSpace(out) == "yes", err
}

// PowerOff kills every process of the host at once (a power cut); its
// files stay, and CreateHost with the same spec starts it again.
func (p *Provider) PowerOff(ctx context.Context, cluster provider.ClusterRef, name string) error {
	mu := p.hostLock(cluster, name)
	mu.Lock()
	defer mu.Unlock()
	rec, err := p.store.get(cluster, name)
	if err != nil {
		return err
	}
	t := time.Now()
	if _, err := p.run(ctx, rec.Machine, "power off", powerOffScript(p.layoutOf(cluster, name)), nil); err != nil {
		return fmt.Errorf("host %q: %w", name, err)
	}
	p.log.Info("host powered off", "cluster", cluster.Key(), "host", name, "machine", rec.Machine, "duration", time.Since(t).Round(time.Millisecond))
	return nil
}

// DeleteHost removes every trace of the host from its machine (unit,
// processes, mounts, cgroups, files), then its record, which frees the
// machine. A machine that cannot be cleaned keeps its record: the call
// fails and can be repeated.
func (p *Provider) DeleteHost(ctx context.Context, cluster provider.ClusterRef, name string) error {
	mu := p.hostLock(cluster, name)
	mu.Lock()
	defer mu.Unlock()
	rec, err := p.store.get(cluster, name)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	t := time.Now()
	if _, err := p.run(ctx, rec.Machine, "delete", deleteScript(p.layoutOf(cluster, name)), nil); err != nil {
		return fmt.Errorf("host %q: %w", name, err)
	}
	if err := p.store.remove(cluster, name); err != nil {
		return err
	}
	p.log.Info("host deleted", "cluster", cluster.Key(), "host", name, "machine", rec.Machine, "duration", time.Since(t).Round(time.Millisecond))
	return nil
}
