package vip

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestGratuitousARP(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	f := GratuitousARP(mac, netip.MustParseAddr("10.1.2.3"))
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // Ethernet: broadcast, from mac, ARP
		0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		0x02, 0, 0, 0, 0, 0x01, 10, 1, 2, 3, // sender: mac, the address
		0, 0, 0, 0, 0, 0, 10, 1, 2, 3, // target: the address
	}
	if !bytes.Equal(f, want) {
		t.Errorf("frame\n%x\nwant\n%x", f, want)
	}
}

// TestHoldRelease adds and removes the address on the link of its
// network, in a namespace of the test's own (root).
func TestHoldRelease(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); ns.Close() }()
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}, PeerName: "vip1"}
	if err := netlink.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.9.0.2/24")
	if err := netlink.AddrAdd(link, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(log, netip.MustParseAddr("10.8.0.1")); err == nil {
		t.Error("an address of no link's network was accepted")
	}
	a, err := New(log, netip.MustParseAddr("10.9.0.10"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Held() {
		t.Fatal("held before Hold")
	}
	for range 2 { // idempotent
		if err := a.Hold(); err != nil {
			t.Fatal(err)
		}
	}
	if !a.Held() {
		t.Error("not held after Hold")
	}
	for range 2 {
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if a.Held() {
		t.Error("held after Release")
	}
}
