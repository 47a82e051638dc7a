package hostctl

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/wire"
)

// On a real machine an agent shares the machine's network namespace, so
// what it sets up there outlives its state dir: the CNI plugins' iptables
// rules and IPAM allocations per pod, its FORWARD and masquerade rules,
// the pods' bridge and its host-gw routes. Cleanup removes them; killing
// the processes alone would leave them behind.

// teardownPods stops and removes every pod sandbox through the host's
// containerd, so that CNI DEL undoes what the plugins did per pod (portmap
// rules, cached results). The agent must be dead already, or it would
// start the pods again.
func teardownPods(ctx context.Context, agentDir string) int {
	// An error means containerd is gone or failing; PowerOff cleans what
	// it can.
	n, _ := cri.RemoveAllPodSandboxes(ctx, containerd.PathsFor(agentDir).Socket)
	return n
}

// removeNetwork removes the agent's rules, bridge and routes from the
// machine's network namespace. Every step goes on after a failure.
func removeNetwork(ctx context.Context, agentDir string, args []string) error {
	conf := cni.ReadConflist(filepath.Join(agentDir, wire.CNIConfDir))
	bridge, podCIDR := conf.Bridge, conf.PodCIDR
	var errs []error
	if podCIDR != "" {
		clusterCIDR := flagValue(args, "--cluster-cidr")
		if clusterCIDR == "" {
			clusterCIDR = wire.DefaultClusterCIDR
		}
		errs = append(errs, cni.RemoveForward(ctx, podCIDR), cni.RemoveMasquerade(ctx, podCIDR, clusterCIDR))
	}
	if bridge != "" {
		if link, err := netlink.LinkByName(bridge); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w", bridge, err))
			}
		}
	}
	// The routes package marks its routes with its own protocol number:
	// nobody else's are touched.
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routes.Protocol, Table: syscall.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		errs = append(errs, fmt.Errorf("list routes: %w", err))
	}
	for _, r := range rs {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route to %v: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

// flagValue returns the value of a flag in args ("--f v" or "--f=v").
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
