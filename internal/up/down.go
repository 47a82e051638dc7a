package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/wire"
)

// Down stops the cluster: the agent, every pod, containerd and the server.
// The data stays (`wharf up` brings the same cluster back) unless purge,
// which also removes the state dir, mounts, cgroups, the bridge and the
// iptables rules, leaving nothing behind.
func Down(ctx context.Context, out io.Writer, o Options, purge bool) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("wharf down needs root: it stops containerd and removes mounts and network devices")
	}
	l := layoutOf(o)
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// The agent first, so nothing recreates what goes next.
	fail(l.agent.Stop(10 * time.Second))
	// Through CRI, so that containerd tears down the pods' networks (CNI
	// DEL) and mounts itself. Best effort: Down goes on whatever fails.
	n, _ := cri.RemoveAllPodSandboxes(ctx, containerd.PathsFor(l.nodeDir).Socket)
	if n > 0 {
		fmt.Fprintf(out, "removed %d pods\n", n)
	}
	fail(containerd.Stop(ctx, l.nodeDir))
	fail(l.server.Stop(10 * time.Second))
	podCIDR := cni.ReadConflist(filepath.Join(l.nodeDir, wire.CNIConfDir)).PodCIDR
	if purge {
		fail(containerd.Cleanup(ctx, l.nodeDir, l.cgroupRoot))
		fail(removeNetwork(ctx, podCIDR))
		removeEmptyCgroupParent(l.cgroupRoot)
		fail(os.RemoveAll(o.StateDir))
		fmt.Fprintf(out, "stopped and purged %s\n", o.StateDir)
	} else {
		fail(containerd.Shutdown(ctx, l.nodeDir, l.cgroupRoot))
		fmt.Fprintf(out, "stopped; data kept in %s (wharf up brings the cluster back)\n", o.StateDir)
	}
	return errors.Join(errs...)
}

// removeNetwork deletes the pods' bridge and the forward rules for the pod CIDR.
func removeNetwork(ctx context.Context, podCIDR string) error {
	var errs []error
	if link, err := netlink.LinkByName(cni.DefaultBridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", cni.DefaultBridge, err))
		}
	}
	if podCIDR != "" {
		errs = append(errs, cni.RemoveForward(ctx, podCIDR), cni.RemoveMasquerade(ctx, podCIDR, wire.DefaultClusterCIDR))
	}
	return errors.Join(errs...)
}

// removeEmptyCgroupParent removes the parent of a host's cgroup root (e.g.
// /wharf) in every v1 hierarchy when no other host is left in it.
func removeEmptyCgroupParent(cgroupRoot string) {
	parent := filepath.Dir(filepath.Clean(cgroupRoot))
	if parent == "/" || parent == "." {
		return
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		os.Remove(filepath.Join(h, parent)) // fails, as it should, unless empty
	}
}
