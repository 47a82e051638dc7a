package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"wharf.dev/wharf/internal/provider"
)

// CreateHost takes a free machine for the host (or the one already
// serving it), makes sure the machine has the packages and the binary,
// writes the host's files and starts its process. A host whose process
// runs is returned as it is.
func (p *Provider) CreateHost(ctx context.Context, spec provider.HostSpec) (provider.Host, error) {
	if !validName(spec.Name) || !validName(spec.Cluster.Key()) {
		return provider.Host{}, fmt.Errorf("host %q of cluster %q: names must be lower-case DNS labels", spec.Name, spec.Cluster.Key())
	}
	if len(spec.Args) == 0 {
		return provider.Host{}, fmt.Errorf("host %q: no args", spec.Name)
	}
	mu := p.hostLock(spec.Cluster, spec.Name)
	mu.Lock()
	defer mu.Unlock()
	start := time.Now()

	l := p.layoutOf(spec.Cluster, spec.Name)
	rec, out, err := p.claimAndProbe(ctx, spec, l)
	if err != nil {
		return provider.Host{}, err
	}
	host := p.hostOf(rec)
	log := p.log.With("cluster", spec.Cluster.Key(), "host", spec.Name, "machine", rec.Machine)
	pr := parseProbe(out)
	if pr.running {
		host.Running = true
		return host, p.setInit(rec, pr.init)
	}
	if len(pr.missing) > 0 {
		log.Info("installing packages", "packages", pr.missing)
		t := time.Now()
		if _, err := p.run(ctx, rec.Machine, "install packages", installScript(pr.missing), nil); err != nil {
			return host, fmt.Errorf("host %q: %w", spec.Name, err)
		}
		log.Info("installed packages", "duration", time.Since(t).Round(time.Millisecond))
	}
	if err := p.upload(ctx, rec.Machine, l, p.bin, l.Binary(), pr.sum); err != nil {
		return host, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	// The agent's pod network plugin, when it is next to the binary (a
	// host running something else needs none).
	if _, err := os.Stat(p.plugin.path); err == nil {
		if err := p.upload(ctx, rec.Machine, l, p.plugin, l.Plugin(), pr.pluginSum); err != nil {
			return host, fmt.Errorf("host %q: %w", spec.Name, err)
		}
	}
	files, err := hostTar(spec, l, host.Address)
	if err != nil {
		return host, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if _, err := p.run(ctx, rec.Machine, "start", startScript(l, pr.init, unitFile(l, spec)), bytes.NewReader(files)); err != nil {
		return host, fmt.Errorf("host %q: %w", spec.Name, err)
	}
	if err := p.setInit(rec, pr.init); err != nil {
		return host, err
	}
	host.Running = true
	log.Info("host started", "address", host.Address, "init", pr.init, "duration", time.Since(start).Round(time.Millisecond))
	return host, nil
}

// claimAndProbe returns the host's record and what its machine says of
// it. A machine that cannot be reached when it is first given a host is
// released and skipped for a while, so that a dead machine in the list
// does not stop the others from being used.
func (p *Provider) claimAndProbe(ctx context.Context, spec provider.HostSpec, l layout) (record, string, error) {
	for {
		rec, fresh, err := p.store.claim(spec, p.cfg.Hosts, p.unreachable())
		if err != nil {
			return rec, "", err
		}
		out, err := p.run(ctx, rec.Machine, "probe", probeScript(l), nil)
		if err == nil {
			return rec, out, nil
		}
		if !fresh || !errors.Is(err, errDial) || ctx.Err() != nil {
			return rec, "", fmt.Errorf("host %q: %w", spec.Name, err)
		}
		p.log.Warn("machine unreachable; trying another", "machine", rec.Machine, "host", spec.Name, "err", err)
		if rerr := p.store.remove(spec.Cluster, spec.Name); rerr != nil {
			return rec, "", errors.Join(err, rerr)
		}
		p.mu.Lock()
		p.down[normalize(rec.Machine)] = time.Now()
		p.mu.Unlock()
	}
}

// unreachable returns the machines that could not be reached lately.
func (p *Provider) unreachable() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	skip := map[string]bool{}
	for m, t := range p.down {
		if time.Since(t) < downFor {
			skip[m] = true
		}
	}
	return skip
}

// upload copies a local executable to target on the host unless the
// machine has it.
func (p *Provider) upload(ctx context.Context, machine string, l layout, b *binary, target, remoteSum string) error {
	sum, err := b.checksum()
	if err != nil {
		return err
	}
	if sum == remoteSum {
		return nil
	}
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("copy %s: %w", b.path, err)
	}
	defer f.Close()
	t := time.Now()
	if _, err := p.run(ctx, machine, "copy "+filepath.Base(target), uploadScript(l, target, sum), f); err != nil {
		return err
	}
	p.log.Debug("copied executable", "machine", machine, "path", target, "duration", time.Since(t).Round(time.Millisecond))
	return nil
}

// setInit records how the host's process was started.
func (p *Provider) setInit(rec record, init string) error {
	if rec.Init == init {
		return nil
	}
	rec.Init = init
	return p.store.put(rec)
}

// hostOf is what a record says of a host, without asking its machine.
func (p *Provider) hostOf(rec record) provider.Host {
	_, addr := machineAddr(rec.Machine)
	return provider.Host{
		Name:     rec.Name,
		Role:     rec.Role,
		Cluster:  rec.Cluster,
		Address:  addr,
		StateDir: p.layoutOf(rec.Cluster, rec.Name).State(),
	}
}
