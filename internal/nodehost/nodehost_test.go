package nodehost

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/network/routes"
)

func TestRecordRoundTripAndFind(t *testing.T) {
	dir := t.TempDir()
	r := Record{StateDir: filepath.Join(dir, "host", "agent"), CgroupRoot: "/wharf/x", CNIConfDir: "/c", ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", NetNS: "1:2"}
	if err := Write(r); err != nil {
		t.Fatal(err)
	}
	got, err := Read(r.StateDir)
	if err != nil || got != r {
		t.Errorf("Read = %+v, %v; want %+v", got, err, r)
	}
	found := Find(dir)
	if len(found) != 1 || found[0] != r {
		t.Errorf("Find = %+v, want [%+v]", found, r)
	}
	if _, err := Read(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("Read of a dir without a record: %v, want not-exist", err)
	}
}

// TestRemoveNetwork: in a namespace of the test's own, what an agent set
// up goes (its FORWARD and masquerade rules, service table, bridge, host-gw
// routes and unreachable routes), and another cluster's agent's stay.
func TestRemoveNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"ip", "iptables", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ns, err := netns.GetFromPath(critest.NewNetNS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ctx := context.Background()
	dir := t.TempDir()
	r := Record{StateDir: dir, CNIConfDir: filepath.Join(dir, "cni", "net.d"), ClusterCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", ServiceTable: "wharf-svc-test"}
	if _, err := cni.WriteConflist(r.CNIConfDir, cni.Options{PodCIDR: "10.244.1.0/24", Bridge: "wbr0", Socket: filepath.Join(dir, "wharf.sock")}); err != nil {
		t.Fatal(err)
	}
	err = nsrun.In(ns, func() error {
		if r.NetNS, err = CurrentNetNS(); err != nil {
			return err
		}
		// What the agent and its pod network would have made.
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "wbr0"
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return err
		}
		link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "n0"}, PeerName: "n1"}
		if err := netlink.LinkAdd(link); err != nil {
			return err
		}
		n0, _ := netlink.LinkByName("n0")
		netlink.AddrAdd(n0, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.50.0.1"), Mask: net.CIDRMask(24, 32)}})
		netlink.LinkSetUp(n0)
		for _, dst := range []string{"10.244.2.0/24", "10.245.2.0/24"} { // ours, another cluster's
			_, ipnet, _ := net.ParseCIDR(dst)
			if err := netlink.RouteAdd(&netlink.Route{Dst: ipnet, Gw: net.ParseIP("10.50.0.2"), LinkIndex: n0.Attrs().Index, Protocol: routes.Protocol}); err != nil {
				return err
			}
		}
		for _, p := range []string{r.ClusterCIDR, r.ServiceCIDR} {
			if err := routes.Guard(nil, netip.MustParsePrefix(p)); err != nil {
				return err
			}
		}
		if err := cni.AllowForward(ctx, "10.244.1.0/24"); err != nil {
			return err
		}
		if err := cni.Masquerade(ctx, "10.244.1.0/24", r.ClusterCIDR); err != nil {
			return err
		}
		for _, table := range []string{r.ServiceTable, "wharf-svc-other"} { // ours, another agent's
			if out, err := exec.Command("nft", "add", "table", "ip", table).CombinedOutput(); err != nil {
				return fmt.Errorf("nft add table: %v: %s", err, out)
			}
		}

		if err := RemoveNetwork(ctx, r); err != nil {
			return err
		}

		if _, err := netlink.LinkByName("wbr0"); err == nil {
			t.Error("the pods' bridge is left")
		}
		out, _ := exec.Command("ip", "route", "show", "proto", "87").CombinedOutput()
		if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "10.245.2.0/24 via 10.50.0.2") || strings.Contains(got, "\n") {
			t.Errorf("routes of protocol 87 left: %q, want only the other cluster's", got)
		}
		tables, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		if strings.Contains(string(tables), r.ServiceTable) || !strings.Contains(string(tables), "wharf-svc-other") {
			t.Errorf("nftables tables %q: want the service table gone, the other agent's kept", tables)
		}
		rules, _ := exec.Command("iptables-save").CombinedOutput()
		if strings.Contains(string(rules), "10.244.1.0/24") {
			t.Errorf("rules of the pod CIDR left:\n%s", rules)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
