package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/mountinfo"
	"wharf.dev/wharf/internal/network/announce"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/nodehost"
	"wharf.dev/wharf/internal/provider"
)

// PowerOff stops a host as a power cut would: its link goes down first
// (it answers nothing from then on, ARP for its addresses included),
// then every process of its cgroup subtree (the wharf process, containerd, shims, containers) is killed
// while frozen, so none can fork away; what a reboot would not find
// either goes too (mounts below the state dir, shim sockets, cached CNI
// results, the cgroups). Files, the namespace and the veth stay;
// CreateHost brings the link up and starts the host again. A missing host is ErrNotFound.
func (p *Provider) PowerOff(ctx context.Context, cluster provider.ClusterRef, name string) error {
	n := p.namesFor(cluster, name)
	defer lockHost(n.dir)()
	r, err := readRecord(n.dir)
	if err == nil && r.Cluster.UID != cluster.UID {
		err = provider.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("power off host %q of cluster %s: %w", name, cluster.Key(), err)
	}
	start := time.Now()
	if l, err := netlink.LinkByName(n.veth); err == nil {
		if err := setLinkPower(l, false); err != nil {
			return fmt.Errorf("power off host %q: %w", name, err)
		}
	}
	if err := p.stopHost(ctx, n); err != nil {
		return fmt.Errorf("power off host %q: %w", name, err)
	}
	r.PID, r.StartTime = 0, 0
	if err := writeRecord(n.dir, r); err != nil {
		return fmt.Errorf("power off host %q: %w", name, err)
	}
	p.log.Info("host powered off", "cluster", cluster.Key(), "host", name, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// DeleteHost powers the host off and removes every trace of it: the
// containerd leftovers outside its state dir, the veth and namespace, the
// cgroups, and last the state dir with the record (which frees its
// address). Names are derived, not read from the record, so a host a
// crash left half made or half removed goes too; a missing host is not
// an error. When something cannot be removed it says what, and keeps the
// record and state dir, so that a later DeleteHost (or `wharf service
// stop --purge`) finds the host again: nothing is orphaned.
func (p *Provider) DeleteHost(ctx context.Context, cluster provider.ClusterRef, name string) error {
	if checkName("cluster name", cluster.Name) != nil || checkName("host name", name) != nil {
		return nil // no such host can exist
	}
	n := p.namesFor(cluster, name)
	defer lockHost(n.dir)()
	if r, err := readRecord(n.dir); err == nil && r.Cluster.UID != cluster.UID {
		return nil // another cluster's host, whose key is the same
	}
	_, statErr := os.Stat(n.dir)
	start := time.Now()
	err := p.stopHost(ctx, n)
	// Processes left alive would go on in a namespace no one can reach
	// and hold the cgroups: keep everything for the next attempt.
	if left := cgroups.SubtreePids(n.cgroupRoot); len(left) > 0 {
		return fmt.Errorf("delete host %q: processes %v survived: %w", name, left, err)
	}
	if err := errors.Join(err, deleteVeth(n), deleteNetNS(n)); err != nil {
		return fmt.Errorf("delete host %q (its record stays in %s): %w", name, n.dir, err)
	}
	if err := removeState(n.dir); err != nil {
		return fmt.Errorf("delete host %q: %w", name, err)
	}
	// The cluster's own cgroup level goes with its last host.
	cgroups.RemoveEmpty(filepath.Dir(n.cgroupRoot))
	if statErr != nil {
		return nil // nothing was there (but leftovers of a crash, gone now)
	}
	p.log.Info("host deleted", "cluster", cluster.Key(), "host", name, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// stopHost kills the host's processes and removes what would not survive
// a power cut: each agent's node (package nodehost, which finds the
// agent's state dir below the host's: $(STATE_DIR)/agent), then the
// whole host: processes and mounts outside a node's dir, the cgroups.
func (p *Provider) stopHost(ctx context.Context, n names) error {
	var errs []error
	for _, r := range nodehost.Find(n.dir) {
		errs = append(errs, nodehost.Stop(ctx, r))
		// The load balancer addresses the agent held on the host's link
		// are gone with the power, as on a machine.
		if _, err := os.Stat(n.netnsPath()); err == nil {
			errs = append(errs, nsrun.At(n.netnsPath(), func() error {
				return announce.RemoveRecorded(filepath.Join(r.StateDir, nodehost.LoadBalancerFile))
			}))
		}
	}
	errs = append(errs, containerd.Shutdown(ctx, n.dir, n.cgroupRoot))
	return errors.Join(errs...)
}

// removeState removes a host's state dir, its record last: a host whose
// files cannot all go keeps the record that finds it again. Nothing is
// removed through a mount that is still there.
func removeState(dir string) error {
	if left, err := mountinfo.Under(dir); err != nil || len(left) > 0 {
		return fmt.Errorf("state dir %s: not removed, still mounted: %v %v", dir, left, err)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.Name() != recordFile {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("state dir %s (its record stays): %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	return nil
}
