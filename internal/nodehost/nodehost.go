// Package nodehost is what a node agent leaves on its host, and how it
// goes. The agent records, in <state dir>/node.json when it starts, where
// it keeps things and which ranges its network uses; Stop kills the node
// as a power cut would (containerd, shims, containers; mounts, shim
// sockets, cached CNI results and cgroups go, files stay) and Remove
// tears it down: pods through CRI (so CNI undoes what it did per pod),
// Stop, the network the agent made in the namespace it ran in (FORWARD
// and masquerade rules, the pods' bridge, host-gw and unreachable routes
// of its cluster's ranges), and the state dir. `wharf down`, the ssh
// provider's hostctl and the local provider all tear nodes down here.
package nodehost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/network/announce"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/proxy"
	"wharf.dev/wharf/internal/network/routes"
)

// RecordFile is the record's name in the agent's state dir.
const RecordFile = "node.json"

// LoadBalancerFile, in the agent's state dir, records the load balancer
// addresses the agent holds on its host's link (package announce).
const LoadBalancerFile = "load-balancer-addresses.json"

// Record is what an agent leaves on its host.
type Record struct {
	// StateDir is the agent's state dir (its containerd's too).
	StateDir   string `json:"stateDir"`
	CgroupRoot string `json:"cgroupRoot"`
	// CNIConfDir holds the conflist with the node's pod CIDR and bridge.
	CNIConfDir  string `json:"cniConfDir"`
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// NetNS identifies the network namespace the agent ran in (device
	// and inode of its /proc/self/ns/net): Remove cleans the network only
	// when run in that one. A host with a namespace of its own (the local
	// provider's) loses its network with the namespace.
	NetNS string `json:"netns"`
	// ServiceTable is the nftables table (family ip) of the node's
	// service proxy, in that namespace.
	ServiceTable string `json:"serviceTable,omitempty"`
}

// CurrentNetNS identifies the calling thread's network namespace.
func CurrentNetNS() (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()), &st); err != nil {
		return "", fmt.Errorf("network namespace: %w", err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

// Write records r in its state dir.
func Write(r Record) error {
	if err := os.MkdirAll(r.StateDir, 0o700); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	path := filepath.Join(r.StateDir, RecordFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	return nil
}

// Read returns the record in an agent's state dir (an error satisfying
// errors.Is(err, fs.ErrNotExist): no agent ever ran there).
func Read(stateDir string) (Record, error) {
	var r Record
	data, err := os.ReadFile(filepath.Join(stateDir, RecordFile))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("node record in %s: %w", stateDir, err)
	}
	// The directory may have moved since: trust where the record is.
	r.StateDir = stateDir
	return r, nil
}

// Find returns the records of the agents at or below dir, at most three
// levels down (a host's state dir holds its agent's: $(STATE_DIR)/agent).
func Find(dir string) []Record {
	var out []Record
	for _, pattern := range []string{"", "*", "*/*", "*/*/*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern, RecordFile))
		for _, m := range matches {
			if r, err := Read(filepath.Dir(m)); err == nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// Stop kills the node as a power cut would: every process of its cgroup
// subtree (containerd, shims, containers) at once, then its mounts, shim
// sockets, cached CNI results and cgroups go; its files stay.
func Stop(ctx context.Context, r Record) error {
	return containerd.Shutdown(ctx, r.StateDir, r.CgroupRoot)
}

// RemovePods stops and removes every pod sandbox through the node's
// containerd, which removes their network namespaces and cached CNI
// results. The agent must be stopped first, or it starts them again (the
// pod network's DELs are skipped then: RemoveNetwork removes the hostPort
// rules, the state dir the addresses). It returns how
// many went; a containerd that does not answer removes none.
func RemovePods(ctx context.Context, r Record) int {
	n, _ := cri.RemoveAllPodSandboxes(ctx, containerd.PathsFor(r.StateDir).Socket)
	return n
}

// Remove tears the node down and removes its state dir: RemovePods,
// Stop, the network (when run in the namespace the agent ran in), the
// state dir and the cgroups no other node uses. It goes on after a
// failure and returns what it could not do; the state dir, with the
// record, stays then, so that Remove can run again.
func Remove(ctx context.Context, r Record) error {
	RemovePods(ctx, r)
	var errs []error
	if err := Stop(ctx, r); err != nil {
		errs = append(errs, err)
	}
	here, err := CurrentNetNS()
	if err == nil && here == r.NetNS {
		err = RemoveNetwork(ctx, r)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove node %s (its state stays): %w", r.StateDir, errors.Join(errs...))
	}
	if err := containerd.Cleanup(ctx, r.StateDir, r.CgroupRoot); err != nil {
		return fmt.Errorf("remove node %s: %w", r.StateDir, err)
	}
	if r.CgroupRoot != "" {
		cgroups.RemoveEmptyParents(r.CgroupRoot)
	}
	return nil
}

// RemoveNetwork removes what the agent set up in the calling namespace:
// the FORWARD, masquerade and hostPort rules of its pod CIDR, its service
// proxy's table, the load balancer addresses it held, its pods' bridge, its host-gw routes (those of
// routes.Protocol inside its cluster CIDR: an agent of another cluster in
// the same namespace keeps its own) and the unreachable routes of its
// cluster's ranges. Every step goes on after a failure.
func RemoveNetwork(ctx context.Context, r Record) error {
	conf := cni.ReadConflist(r.CNIConfDir)
	var errs []error
	if conf.PodCIDR != "" && r.ClusterCIDR != "" {
		errs = append(errs, cni.RemoveForward(ctx, conf.PodCIDR), cni.RemoveMasquerade(ctx, conf.PodCIDR, r.ClusterCIDR))
	}
	if conf.PodCIDR != "" && conf.Bridge != "" {
		errs = append(errs, cni.RemoveHostPorts(ctx, conf.Bridge, conf.PodCIDR))
	}
	if conf.Bridge != "" {
		if link, err := netlink.LinkByName(conf.Bridge); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w", conf.Bridge, err))
			}
		}
	}
	cluster, cerr := netip.ParsePrefix(r.ClusterCIDR)
	if cerr == nil {
		rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routes.Protocol, Table: syscall.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("list routes: %w", err))
		}
		for _, rt := range rs {
			dst, ok := prefixOf(rt)
			if !ok || !cluster.Overlaps(dst) {
				continue // another cluster's
			}
			if err := netlink.RouteDel(&rt); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("delete route to %s: %w", dst, err))
			}
		}
	}
	for _, s := range []string{r.ClusterCIDR, r.ServiceCIDR} {
		if p, err := netip.ParsePrefix(s); err == nil {
			errs = append(errs, routes.Unguard(nil, p.Masked()))
		}
	}
	if r.ServiceTable != "" {
		errs = append(errs, removeServiceTable(ctx, r.ServiceTable))
	}
	errs = append(errs, announce.RemoveRecorded(filepath.Join(r.StateDir, LoadBalancerFile)))
	return errors.Join(errs...)
}

// removeServiceTable deletes the service proxy's table; a missing one is
// no error.
func removeServiceTable(ctx context.Context, table string) error {
	nft, err := knftables.New(knftables.IPv4Family, table)
	if err != nil {
		return fmt.Errorf("service table %s: %w", table, err)
	}
	return proxy.Remove(ctx, nft)
}

func prefixOf(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}
