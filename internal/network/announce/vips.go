package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNotHeld is returned by Announce for an address the VIPs does not hold.
var ErrNotHeld = errors.New("address not held")

// garpDelays are when gratuitous ARP is sent after an address is added or
// announced. More than once: a frame can be lost, and a switch or bridge
// may still be learning where the holder is.
var garpDelays = []time.Duration{0, 200 * time.Millisecond, time.Second}

// VIPConfig says where a VIPs holds its addresses.
type VIPConfig struct {
	// NodeIP is the node's IPv4 address: the addresses go on its link.
	NodeIP netip.Addr
	// StateFile records the addresses the VIPs added (required).
	StateFile string
	// NetNS is the path of the link's network namespace; empty: the
	// caller's own (the agent runs in its host's). For tests.
	NetNS  string
	Logger *slog.Logger
}

// VIPs holds a set of IPv4 addresses as /32s on the link of the node's
// address and announces each one it adds with gratuitous ARP.
type VIPs struct {
	cfg VIPConfig
	log *slog.Logger
	ns  netns.NsHandle // closed (-1) when cfg.NetNS is empty
	h   *netlink.Handle

	mu      sync.Mutex
	ours    map[netip.Addr]string // added by us (as recorded) → link name
	held    map[netip.Addr]bool   // ours and on the node's link
	foreign map[netip.Addr]bool   // wanted, but someone else's: logged once
	link    netlink.Link          // the node's link as of the last Set
	fresh   bool                  // no Set yet: announce even what was kept
	sock    int                   // AF_PACKET socket, -1 until needed
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewVIPs returns a VIPs that takes over the addresses its state file
// records: the first Set removes the ones no longer wanted.
func NewVIPs(cfg VIPConfig) (*VIPs, error) {
	if !cfg.NodeIP.Unmap().Is4() {
		return nil, fmt.Errorf("announce: node IP %v is not IPv4", cfg.NodeIP)
	}
	cfg.NodeIP = cfg.NodeIP.Unmap()
	if cfg.StateFile == "" {
		return nil, errors.New("announce: no state file")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, err := readState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	v := &VIPs{cfg: cfg, log: cfg.Logger, ns: netns.None(), ours: st, held: map[netip.Addr]bool{},
		foreign: map[netip.Addr]bool{}, fresh: true, sock: -1, stop: make(chan struct{})}
	if cfg.NetNS != "" {
		if v.ns, err = netns.GetFromPath(cfg.NetNS); err != nil {
			return nil, fmt.Errorf("announce: netns %s: %w", cfg.NetNS, err)
		}
		v.h, err = netlink.NewHandleAt(v.ns)
	} else {
		v.h, err = netlink.NewHandle()
	}
	if err != nil {
		v.ns.Close()
		return nil, fmt.Errorf("announce: netlink: %w", err)
	}
	return v, nil
}

// Set makes addrs the addresses held: it adds the missing ones and
// announces them, and removes the ones it added that are not in addrs.
// An address someone else put on the link is left alone and not held.
func (v *VIPs) Set(ctx context.Context, addrs []netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	want := map[netip.Addr]bool{}
	for _, a := range addrs {
		if a = a.Unmap(); !a.Is4() {
			return fmt.Errorf("announce: %v is not an IPv4 address", a)
		}
		want[a] = true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return errors.New("announce: VIPs closed")
	}
	link, present, err := v.nodeLink()
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	v.link = link

	var errs []error
	removed := false
	for a, ln := range v.ours {
		if want[a] && ln == name {
			continue
		}
		if err := v.remove(a, ln); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(v.ours, a)
		delete(v.held, a)
		removed = true
		v.log.Info("released load balancer address", "address", a, "link", ln)
	}

	var add, announce []netip.Addr
	for a := range want {
		_, ours := v.ours[a]
		switch {
		case !ours && present[a]:
			if !v.foreign[a] {
				v.foreign[a] = true
				v.log.Warn("load balancer address already on the link, not ours: left alone", "address", a, "link", name)
			}
		case ours && present[a]:
			v.held[a] = true
			if v.fresh {
				announce = append(announce, a)
			}
		default:
			v.ours[a] = name
			add = append(add, a)
		}
	}
	for a := range v.foreign {
		if !want[a] || !present[a] {
			delete(v.foreign, a)
		}
	}
	// Record before adding: an agent that dies in between still knows.
	if len(add) > 0 || removed {
		if err := v.save(); err != nil {
			for _, a := range add {
				delete(v.ours, a)
			}
			return errors.Join(append(errs, err)...)
		}
	}
	for _, a := range add {
		if err := v.h.AddrReplace(link, vipAddr(a, name)); err != nil {
			errs = append(errs, fmt.Errorf("announce: add %s on %s: %w", a, name, err))
			continue
		}
		v.held[a] = true
		announce = append(announce, a)
		v.log.Info("holding load balancer address", "address", a, "link", name)
	}
	v.fresh = false
	for _, a := range announce {
		if err := v.announce(a); err != nil {
			v.log.Warn("gratuitous ARP", "address", a, "err", err)
		}
	}
	return errors.Join(errs...)
}

// Announce sends gratuitous ARP for a held address again (now and a
// couple of times after), e.g. when the cluster's membership changed.
func (v *VIPs) Announce(addr netip.Addr) error {
	addr = addr.Unmap()
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.held[addr] || v.closed {
		return fmt.Errorf("announce %s: %w", addr, ErrNotHeld)
	}
	return v.announce(addr)
}

// Held returns the addresses held.
func (v *VIPs) Held() []netip.Addr {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := slices.Collect(maps.Keys(v.held))
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// RemoveAll removes every address the VIPs added, and its state file
// when that succeeded (agent shutdown with purge).
func (v *VIPs) RemoveAll() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	for a, ln := range v.ours {
		if err := v.remove(a, ln); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(v.ours, a)
		delete(v.held, a)
	}
	if len(errs) > 0 {
		return errors.Join(append(errs, v.save())...)
	}
	if err := os.Remove(v.cfg.StateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

// Close stops the pending announcements and releases the VIPs' handles.
// The addresses stay, so a restarting agent keeps serving them; the next
// VIPs over the same state file takes them over (or RemoveRecorded).
func (v *VIPs) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	close(v.stop)
	v.mu.Unlock()
	v.wg.Wait()
	if v.sock >= 0 {
		unix.Close(v.sock)
	}
	v.h.Close()
	v.ns.Close()
	return nil
}

// RemoveRecorded removes the addresses recorded in stateFile from the
// caller's network namespace, then the file: teardown without a VIPs.
func RemoveRecorded(stateFile string) error {
	st, err := readState(stateFile)
	if err != nil {
		return err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("announce: netlink: %w", err)
	}
	defer h.Close()
	var errs []error
	for a, ln := range st {
		errs = append(errs, removeAddr(h, a, ln))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

// nodeLink returns the link carrying the node IP and the /32s on it.
func (v *VIPs) nodeLink() (netlink.Link, map[netip.Addr]bool, error) {
	all, err := v.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, fmt.Errorf("announce: list addresses: %w", err)
	}
	index := 0
	for _, a := range all {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.cfg.NodeIP {
			index = a.LinkIndex
		}
	}
	if index == 0 {
		return nil, nil, fmt.Errorf("announce: no link has the node IP %s", v.cfg.NodeIP)
	}
	link, err := v.h.LinkByIndex(index)
	if err != nil {
		return nil, nil, fmt.Errorf("announce: link of %s: %w", v.cfg.NodeIP, err)
	}
	present := map[netip.Addr]bool{}
	for _, a := range all {
		ones, _ := a.Mask.Size()
		if ip, ok := netip.AddrFromSlice(a.IP); ok && a.LinkIndex == index && ones == 32 {
			present[ip.Unmap()] = true
		}
	}
	return link, present, nil
}

func (v *VIPs) remove(a netip.Addr, link string) error {
	return removeAddr(v.h, a, link)
}

// removeAddr removes a/32 from link; one already gone is no error.
func removeAddr(h *netlink.Handle, a netip.Addr, link string) error {
	l, err := h.LinkByName(link)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("announce: link %s: %w", link, err)
	}
	err = h.AddrDel(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("announce: remove %s from %s: %w", a, link, err)
	}
	return nil
}

// vipAddr is a/32, scope global, labelled so `ip addr` shows whose it is.
func vipAddr(a netip.Addr, link string) *netlink.Addr {
	return &netlink.Addr{
		IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)},
		Label: label(link),
		Scope: unix.RT_SCOPE_UNIVERSE,
	}
}

// label is "<link>:lb", or none when that is longer than a label may be
// (IFNAMSIZ less the NUL).
func label(link string) string {
	if l := link + ":lb"; len(l) < unix.IFNAMSIZ {
		return l
	}
	return ""
}

// state is the state file's content.
type state struct {
	Addresses []recorded `json:"addresses"`
}

type recorded struct {
	Address netip.Addr `json:"address"`
	Link    string     `json:"link"`
}

func readState(path string) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		// Not guessed around: what we cannot read we must not remove.
		return nil, fmt.Errorf("announce: state file %s: %w", path, err)
	}
	for _, r := range st.Addresses {
		out[r.Address] = r.Link
	}
	return out, nil
}

// save writes the state file atomically: a crash leaves the old or the
// new record, never half of one.
func (v *VIPs) save() error {
	var st state
	for a, ln := range v.ours {
		st.Addresses = append(st.Addresses, recorded{a, ln})
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(v.cfg.StateFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(v.cfg.StateFile)+".tmp*")
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), v.cfg.StateFile)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("announce: write state: %w", err)
	}
	return nil
}
