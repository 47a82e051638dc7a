package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/mountinfo"
	"wharf.dev/wharf/internal/nodehost"
)

// Down stops the cluster: the agent, every pod, containerd and the server.
// The data stays (`wharf up` brings the same cluster back) unless purge,
// which tears the node down (package nodehost: mounts, cgroups, the pods'
// bridge, rules and routes), lets go of the cluster's ranges and removes
// the state dir, leaving nothing behind. What cannot go is named, and the
// state dir stays with the records that find it again: running it again
// finishes the job.
func Down(ctx context.Context, out io.Writer, o Options, purge bool) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("wharf down needs root: it stops containerd and removes mounts and network devices")
	}
	if _, err := os.Stat(o.StateDir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "nothing to stop: %s does not exist\n", o.StateDir)
		return nil
	}
	l := layoutOf(o)
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	c, cerr := loadCluster(o.StateDir)
	if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
		fail(cerr)
	}
	// The agent first, so nothing recreates what goes next.
	fail(l.agent.Stop(10 * time.Second))
	node, nerr := nodehost.Read(l.nodeDir)
	if nerr == nil {
		// Through CRI, so that containerd tears down the pods' networks
		// (CNI DEL) and mounts itself.
		if n := nodehost.RemovePods(ctx, node); n > 0 {
			fmt.Fprintf(out, "removed %d pods\n", n)
		}
	} else if !errors.Is(nerr, fs.ErrNotExist) {
		fail(nerr)
	}
	fail(containerd.Stop(ctx, l.nodeDir))
	fail(l.server.Stop(10 * time.Second))
	if !purge {
		if nerr == nil {
			fail(nodehost.Stop(ctx, node))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		fmt.Fprintf(out, "stopped; data kept in %s (wharf up brings the cluster back)\n", o.StateDir)
		return nil
	}
	if nerr == nil {
		fail(nodehost.Remove(ctx, node))
	} else if cerr == nil {
		// An agent that never started: only its cgroups may be left.
		fail(containerd.Shutdown(ctx, l.nodeDir, c.CgroupRoot))
	}
	if cerr == nil {
		fail(release(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("purge %s: not finished, the state dir stays (run it again): %w", o.StateDir, err)
	}
	if err := mountinfo.RemoveAll(o.StateDir); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	fmt.Fprintf(out, "stopped and purged %s\n", o.StateDir)
	return nil
}
