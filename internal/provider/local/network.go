package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/network/netalloc"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/network/routes"
)

// EnsureNetwork makes the provider network whole: the bridge with the
// service address and the owner in its alias, the unreachable route that
// keeps the network off the default interface when the bridge is gone,
// the FORWARD rule for bridged traffic (bridged frames traverse iptables
// when br_netfilter is loaded, and a machine with Docker drops them by
// default) and the isolation tables. It refuses a network that anything
// else on the machine holds, naming the holder. CreateHost calls it; the
// service calls it at start, so its address exists before the first host.
func (p *Provider) EnsureNetwork(ctx context.Context) error {
	unlock, err := netalloc.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return p.ensureNetworkLocked(ctx)
}

// ensureNetworkOnce is EnsureNetwork the first time, then only a check
// that the bridge is there: a host is made in tens of milliseconds, and
// the whole check costs as much again.
func (p *Provider) ensureNetworkOnce(ctx context.Context) error {
	if p.networkOK.Load() {
		if _, err := netlink.LinkByName(p.cfg.Bridge); err == nil {
			return nil
		}
	}
	return p.EnsureNetwork(ctx)
}

func (p *Provider) ensureNetworkLocked(ctx context.Context) error {
	if err := p.checkNetworkFree(); err != nil {
		return err
	}
	br, err := netlink.LinkByName(p.cfg.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = p.cfg.Bridge
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err)
		}
		p.log.Info("created the provider bridge", "bridge", p.cfg.Bridge, "address", p.bridgePrefix(), "owner", p.cfg.Owner)
		br, err = netlink.LinkByName(p.cfg.Bridge)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("bridge %s: exists and is a %s, not a bridge", p.cfg.Bridge, br.Type())
	}
	if alias := br.Attrs().Alias; alias != p.cfg.Owner {
		if alias != "" {
			return fmt.Errorf("bridge %s belongs to %s, not %s", p.cfg.Bridge, alias, p.cfg.Owner)
		}
		if err := netlink.LinkSetAlias(br, p.cfg.Owner); err != nil {
			return fmt.Errorf("bridge %s: alias: %w", p.cfg.Bridge, err)
		}
	}
	if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: ipNet(p.bridgePrefix())}); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", p.cfg.Bridge, p.bridgePrefix(), err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: up: %w", p.cfg.Bridge, err)
	}
	if !routes.Guarded(nil, p.network) {
		if err := routes.Guard(nil, p.network); err != nil {
			return fmt.Errorf("provider network %s: %w", p.network, err)
		}
	}
	// iptables takes ~10 ms a call here, half of making a host: check
	// the rule once per provider (and again after RemoveNetwork).
	if !p.forwardOK.Load() {
		if err := iptables(ctx, true, p.forwardRule()); err != nil {
			return err
		}
		p.forwardOK.Store(true)
	}
	if err := p.writeIsolation(ctx); err != nil {
		return err
	}
	p.networkOK.Store(true)
	return nil
}

// RemoveNetwork removes the bridge, its route, rule and tables once no
// host is left (`wharf service stop --purge`, tests).
func (p *Provider) RemoveNetwork(ctx context.Context) error {
	recs, err := p.allRecords()
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		return fmt.Errorf("bridge %s: %d hosts still use it", p.cfg.Bridge, len(recs))
	}
	var errs []error
	p.forwardOK.Store(false)
	p.networkOK.Store(false)
	errs = append(errs, p.removeIsolation(ctx))
	if err := iptables(ctx, false, p.forwardRule()); err != nil {
		errs = append(errs, err)
	}
	if br, err := netlink.LinkByName(p.cfg.Bridge); err == nil {
		if alias := br.Attrs().Alias; alias != "" && alias != p.cfg.Owner {
			errs = append(errs, fmt.Errorf("bridge %s belongs to %s: left alone", p.cfg.Bridge, alias))
		} else if err := netlink.LinkDel(br); err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err))
		}
	}
	errs = append(errs, routes.Unguard(nil, p.network))
	return errors.Join(errs...)
}

// checkNetworkFree refuses a network that anything on the machine other
// than this provider holds (an address or route of another interface, a
// resolver, a gateway): the bridge would take over traffic that is not
// its own. The provider's own bridge and guard route are not in the way.
func (p *Provider) checkNetworkFree() error {
	snap, err := netalloc.Scan()
	if err != nil {
		return err
	}
	others := snap.Overlapping(p.network, p.isOwn)
	if len(others) > 0 {
		return fmt.Errorf("provider network %s is in use on this machine: %s", p.network, netalloc.Describe(others))
	}
	return nil
}

// isOwn says whether a holder of the network is the provider itself.
func (p *Provider) isOwn(h netalloc.Holder) bool {
	return h.Link == p.cfg.Bridge || (h.Link == "" && h.Prefix == p.network)
}

func (p *Provider) bridgePrefix() netip.Prefix {
	return netip.PrefixFrom(p.bridgeAddr, p.network.Bits())
}

func (p *Provider) forwardRule() []string {
	return []string{"FORWARD", "-i", p.cfg.Bridge, "-o", p.cfg.Bridge,
		"-m", "comment", "--comment", "wharf: provider bridge", "-j", "ACCEPT"}
}

// iptables inserts (add) or deletes a filter rule, idempotently.
func iptables(ctx context.Context, add bool, rule []string) error {
	run := func(op string) error {
		out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", op}, rule...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s %v: %w: %s", op, rule, err, out)
		}
		return nil
	}
	exists := run("-C") == nil
	switch {
	case add && !exists:
		return run("-I")
	case !add && exists:
		return run("-D")
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ensureNetNS returns a handle of the host's named network namespace,
// creating it (the way `ip netns add` does: a bind mount of the namespace
// on /var/run/netns/NAME) if it is missing.
func ensureNetNS(n names) (netns.NsHandle, error) {
	path := n.netnsPath()
	if h, err := netns.GetFromPath(path); err == nil {
		var st unix.Statfs_t
		if unix.Fstatfs(int(h), &st) == nil && st.Type == unix.NSFS_MAGIC {
			return h, nil
		}
		// A file left by a crash between creating it and mounting on it.
		h.Close()
		if err := os.Remove(path); err != nil {
			return netns.None(), fmt.Errorf("netns %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return netns.None(), fmt.Errorf("netns %s: %w", path, err)
	}
	if err := sharedNetnsDir(); err != nil {
		return netns.None(), err
	}
	var h netns.NsHandle
	err := nsrun.In(netns.None(), func() error {
		var err error
		if h, err = netns.NewNamed(n.netns); err != nil {
			os.Remove(path) // NewNamed leaves the file when mounting fails
		}
		return err
	})
	if err != nil {
		return netns.None(), fmt.Errorf("netns %s: %w", n.netns, err)
	}
	return h, nil
}

// sharedNetnsDir makes /var/run/netns a shared mount point of its own
// before any namespace is mounted in it, as `ip netns add` does
// (iproute2's netns_add). Otherwise the first `ip netns add` after ours
// bind-mounts the directory over itself, hiding the mounts made before
// it: they could then never be unmounted by path, and their files never
// removed ("device or resource busy").
func sharedNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	for made := false; ; made = true {
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: not a mount point yet; make it one, once.
		if !errors.Is(err, unix.EINVAL) || made {
			return fmt.Errorf("mount --make-shared %s: %w", netnsDir, err)
		}
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount --bind %s %s: %w", netnsDir, netnsDir, err)
		}
	}
}

// deleteNetNS removes the namespace's mounts and file; the namespace goes
// with its last user.
func deleteNetNS(n names) error {
	path := n.netnsPath()
	// A namespace mounted twice on its file (by hand, or ours before a
	// bind of the directory) needs as many unmounts.
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("netns %s: unmount: %w", path, err)
		}
		if i == 16 {
			return fmt.Errorf("netns %s: still mounted after %d unmounts", path, i+1)
		}
	}
	if err := os.Remove(path); errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("netns %s: %w: the file is a mount point under a later mount of %s (an `ip netns add` that ran before %s was shared); it goes at the next reboot", path, err, netnsDir, netnsDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

// deleteVeth removes the host's veth pair (deleting one end removes both).
func deleteVeth(n names) error {
	link, err := netlink.LinkByName(n.veth)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	} else if err != nil {
		return fmt.Errorf("veth %s: %w", n.veth, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("veth %s: %w", n.veth, err)
	}
	return nil
}
