package clusterservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"wharf.dev/wharf/internal/mountinfo"
	"wharf.dev/wharf/internal/provider/local"
)

// Purge removes every trace of a stopped service: the hosts of every
// cluster its local provider made (whatever their clusters' state:
// *_FAILED, half made by a service killed mid-create), its provider
// network (bridge, unreachable route, nftables tables, FORWARD rule) and
// its state dir. What cannot go is named, and the state dir, with the
// records that find it again, stays: running Purge again retries. Hosts
// of ssh machines cannot be removed without the service's keys: Purge
// refuses while their records exist.
func Purge(ctx context.Context, out io.Writer, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if pid := o.Proc().Pid(); pid != 0 {
		return fmt.Errorf("wharf service is running (pid %d): stop it first", pid)
	}
	if _, err := os.Stat(o.StateDir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "nothing to purge: %s does not exist\n", o.StateDir)
		return nil
	}
	var errs []error
	if ssh, _ := filepath.Glob(filepath.Join(o.sshDir(), "hosts", "*", "*.json")); len(ssh) > 0 {
		errs = append(errs, fmt.Errorf("%d ssh hosts are still recorded in %s: start the service and delete their clusters (wharf cluster delete NAME --wait)", len(ssh), o.sshDir()))
	}
	cfg := o.localConfig()
	n, nerr := local.ReadNetwork(o.networkFile())
	if nerr == nil {
		cfg.Network, cfg.Bridge = n.CIDR, n.Bridge
	} else if !errors.Is(nerr, fs.ErrNotExist) {
		errs = append(errs, nerr)
	}
	lp, err := local.New(cfg)
	if err != nil {
		return err
	}
	hosts, err := lp.AllHosts(ctx)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if err := lp.DeleteHost(ctx, h.Cluster, h.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "deleted host %s of cluster %s/%s\n", h.Name, h.Cluster.Namespace, h.Cluster.Name)
	}
	// The network goes with the last host; one never claimed (an earlier
	// version's, or none) is not this service's to remove.
	if len(errs) == 0 && nerr == nil {
		if err := lp.RemoveNetwork(ctx); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(out, "removed the provider network %s and bridge %s\n", n.CIDR, n.Bridge)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("purge %s: not finished, the state dir stays (run it again): %w", o.StateDir, err)
	}
	if err := mountinfo.RemoveAll(o.StateDir); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	fmt.Fprintf(out, "purged %s\n", o.StateDir)
	return nil
}
