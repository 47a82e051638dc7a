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

	"wharf.dev/wharf/internal/network/nsrun"
)

// EnsureNetwork creates the provider bridge with the service address, if
// missing, and lets traffic between its ports through FORWARD (bridged
// frames traverse iptables when br_netfilter is loaded, and a machine
// with Docker drops them by default). CreateHost calls it; the service
// may call it at start so its address exists before the first host.
func (p *Provider) EnsureNetwork(ctx context.Context) error {
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
		p.log.Info("created the provider bridge", "bridge", p.cfg.Bridge, "address", p.bridgePrefix())
		br, err = netlink.LinkByName(p.cfg.Bridge)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("bridge %s: exists and is a %s, not a bridge", p.cfg.Bridge, br.Type())
	}
	if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: ipNet(p.bridgePrefix())}); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", p.cfg.Bridge, p.bridgePrefix(), err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s: up: %w", p.cfg.Bridge, err)
	}
	// iptables takes ~10 ms a call here, half of making a host: check
	// the rule once per provider (and again after RemoveNetwork).
	if p.forwardOK.Load() {
		return nil
	}
	if err := iptables(ctx, true, p.forwardRule()); err != nil {
		return err
	}
	p.forwardOK.Store(true)
	return nil
}

// RemoveNetwork removes the bridge and its FORWARD rule once no host is
// left (`wharf service` purge, tests).
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
	if err := iptables(ctx, false, p.forwardRule()); err != nil {
		errs = append(errs, err)
	}
	if br, err := netlink.LinkByName(p.cfg.Bridge); err == nil {
		if err := netlink.LinkDel(br); err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", p.cfg.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

// checkNetworkFree refuses a network that overlaps an address on another
// interface: the bridge would take over traffic that is not ours.
func (p *Provider) checkNetworkFree() error {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		other := netip.PrefixFrom(ip, ones).Masked()
		if !other.Overlaps(p.network) {
			continue
		}
		if link, err := netlink.LinkByIndex(a.LinkIndex); err == nil && link.Attrs().Name == p.cfg.Bridge {
			continue
		}
		return fmt.Errorf("provider network %s overlaps %s on another interface (index %d)", p.network, other, a.LinkIndex)
	}
	return nil
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

// deleteNetNS removes the namespace's mount and file; the namespace goes
// with its last user.
func deleteNetNS(n names) error {
	path := n.netnsPath()
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("netns %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
