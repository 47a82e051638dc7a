package podnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/cniplugin"
	"wharf.dev/wharf/internal/network/nsrun"
	"wharf.dev/wharf/internal/network/podnet"
)

// node is a pod network in a network namespace of its own, as a test
// host's: nothing touches the machine's network.
type node struct {
	t      *testing.T
	ns     string
	server *podnet.Server
	data   string
}

const podCIDR = "10.99.0.0/24"

func newNode(t *testing.T, sandboxes func(context.Context) (map[string]bool, error)) *node {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	n := &node{t: t, ns: critest.NewNetNS(t), data: t.TempDir()}
	s, err := podnet.New(podnet.Config{
		DataDir: n.data, HostNetNS: n.ns, Bridge: "wt0", Sandboxes: sandboxes, CollectAge: time.Nanosecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(context.Background(), podCIDR); err != nil {
		t.Fatal(err)
	}
	n.server = s
	return n
}

// do sends a CNI request for a sandbox whose namespace is netns.
func (n *node) do(cmd, id, netns string, ports ...cniplugin.PortMapping) cniplugin.Response {
	n.t.Helper()
	conf := map[string]any{"cniVersion": "1.0.0", "name": "wharf", "type": "wharf", "socket": "/unused"}
	if len(ports) > 0 {
		conf["runtimeConfig"] = map[string]any{"portMappings": ports}
	}
	data, _ := json.Marshal(conf)
	return n.server.Handle(context.Background(), cniplugin.Request{
		Command: cmd, ContainerID: id, NetNS: netns, IfName: "eth0", Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=" + id, Config: data,
	})
}

// add attaches a new sandbox namespace and returns it and its address.
func (n *node) add(id string, ports ...cniplugin.PortMapping) (string, netip.Addr) {
	n.t.Helper()
	netns := critest.NewNetNS(n.t)
	resp := n.do("ADD", id, netns, ports...)
	if resp.Error != nil {
		n.t.Fatalf("ADD %s: %v", id, resp.Error)
	}
	var res struct {
		CNIVersion string
		Interfaces []struct{ Name, Sandbox string }
		IPs        []struct {
			Address, Gateway string
			Interface        int
		}
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil || len(res.IPs) != 1 {
		n.t.Fatalf("ADD %s: result %s (%v)", id, resp.Result, err)
	}
	ip := res.IPs[0]
	if iface := res.Interfaces[ip.Interface]; iface.Name != "eth0" || iface.Sandbox != netns || ip.Gateway != "10.99.0.1" || res.CNIVersion != "1.0.0" {
		n.t.Errorf("ADD %s: result %s", id, resp.Result)
	}
	addr := netip.MustParsePrefix(ip.Address)
	if addr.Bits() != 24 || !netip.MustParsePrefix(podCIDR).Contains(addr.Addr()) {
		n.t.Errorf("ADD %s: address %s", id, addr)
	}
	return netns, addr.Addr()
}

// in runs fn in the network namespace ns.
func (n *node) in(ns string, fn func() error) {
	n.t.Helper()
	if err := nsrun.At(ns, fn); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) natRules() string {
	var out []byte
	n.in(n.ns, func() error {
		var err error
		out, err = exec.Command("iptables-save", "-t", "nat").Output()
		return err
	})
	return string(out)
}

func (n *node) links() []string {
	var names []string
	n.in(n.ns, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	return names
}

// serve answers "hello from <name>" on port 8080 in netns.
func serve(t *testing.T, netns, name string) {
	var ln net.Listener
	if err := nsrun.At(netns, func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s", name)
			c.Close()
		}
	}()
}

// get connects to addr from netns and returns what it reads.
func get(t *testing.T, netns, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := critest.DialIn(ctx, netns, "tcp", addr)
	if err != nil {
		t.Errorf("from %s to %s: %v", filepath.Base(netns), addr, err)
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	data, _ := io.ReadAll(conn)
	return string(data)
}

// TestAddDel: ADD wires a sandbox to the bridge with an address and a
// default route; the node, other pods and the pod itself reach it, the
// node and the pod through its hostPort too; DEL removes everything,
// twice without harm.
func TestAddDel(t *testing.T) {
	n := newNode(t, nil)
	webNS, web := n.add("web", cniplugin.PortMapping{HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"})
	clientNS, _ := n.add("client")
	serve(t, webNS, "web")

	n.in(webNS, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if eth0.Attrs().OperState != netlink.OperUp && eth0.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("eth0 is down")
		}
		routes, err := netlink.RouteList(eth0, netlink.FAMILY_V4)
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				if r.Gw.String() != "10.99.0.1" {
					t.Errorf("default route via %v", r.Gw)
				}
				return err
			}
		}
		t.Errorf("no default route: %v", routes)
		return err
	})
	webAddr := netip.AddrPortFrom(web, 8080).String()
	for _, tc := range []struct{ name, from, to string }{
		{"node to pod", n.ns, webAddr},
		{"pod to pod", clientNS, webAddr},
		{"node to hostPort on 127.0.0.1", n.ns, "127.0.0.1:18080"},
		{"pod to a hostPort of the node", clientNS, "10.99.0.1:18080"},
		{"pod to its own hostPort (hairpin)", webNS, "10.99.0.1:18080"},
	} {
		if got := get(t, tc.from, tc.to); got != "hello from web" {
			t.Errorf("%s: got %q", tc.name, got)
		}
	}
	if resp := n.do("CHECK", "web", webNS); resp.Error != nil {
		t.Errorf("CHECK: %v", resp.Error)
	}

	for i := 0; i < 2; i++ {
		if resp := n.do("DEL", "web", webNS); resp.Error != nil {
			t.Fatalf("DEL %d: %v", i, resp.Error)
		}
	}
	if rules := n.natRules(); strings.Contains(rules, "DNAT") || strings.Contains(rules, "18080") {
		t.Errorf("hostPort rules left after DEL:\n%s", rules)
	}
	n.in(webNS, func() error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("eth0 left in the sandbox")
		}
		return nil
	})
	if links := n.links(); len(links) != 3 { // lo, wt0, the client's veth
		t.Errorf("links after DEL: %v", links)
	}
	if resp := n.do("CHECK", "web", webNS); resp.Error == nil {
		t.Error("CHECK after DEL succeeded")
	}
	if files, _ := os.ReadDir(n.data); len(files) != 1 {
		t.Errorf("allocations after DEL: %v", files)
	}
}

// TestBridgeDeleted: an ADD makes the bridge again if it is gone.
func TestBridgeDeleted(t *testing.T) {
	n := newNode(t, nil)
	n.in(n.ns, func() error {
		br, err := netlink.LinkByName("wt0")
		if err != nil {
			return err
		}
		return netlink.LinkDel(br)
	})
	netns, _ := n.add("after")
	n.in(n.ns, func() error {
		br, err := netlink.LinkByName("wt0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.1/24" {
			t.Errorf("bridge addresses %v", addrs)
		}
		return err
	})
	serve(t, netns, "after")
	if got := get(t, n.ns, "10.99.0.2:8080"); got != "hello from after" {
		t.Errorf("node to pod after the bridge came back: %q", got)
	}
}

// TestAgentRestart: a new Server finds the allocations and hostPorts of
// the old one; a DEL it never saw (no agent then) is collected, once the
// runtime no longer has the sandbox.
func TestAgentRestart(t *testing.T) {
	known := map[string]bool{"kept": true, "gone": true, "new": true}
	sandboxes := func(context.Context) (map[string]bool, error) { return known, nil }
	n := newNode(t, sandboxes)
	keptNS, kept := n.add("kept", cniplugin.PortMapping{HostPort: 18081, ContainerPort: 8080, Protocol: "tcp"})
	n.add("gone", cniplugin.PortMapping{HostPort: 18082, ContainerPort: 8080, Protocol: "tcp"})
	serve(t, keptNS, "kept")

	s, err := podnet.New(podnet.Config{DataDir: n.data, HostNetNS: n.ns, Bridge: "wt0", Sandboxes: sandboxes, CollectAge: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(context.Background(), podCIDR); err != nil {
		t.Fatal(err)
	}
	n.server = s
	_, next := n.add("new")
	if next == kept || next.Compare(kept) < 0 {
		t.Errorf("new sandbox got %s after %s", next, kept)
	}
	if err := s.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rules := n.natRules(); !strings.Contains(rules, "18082") {
		t.Errorf("gone's hostPort collected while the runtime has it:\n%s", rules)
	}
	delete(known, "gone")
	if err := s.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rules := n.natRules(); strings.Contains(rules, "18082") || !strings.Contains(rules, "18081") {
		t.Errorf("after collecting gone:\n%s", rules)
	}
	if got := get(t, n.ns, "127.0.0.1:18081"); got != "hello from kept" {
		t.Errorf("kept's hostPort after a restart: %q", got)
	}
	if files, _ := os.ReadDir(n.data); len(files) != 2 {
		t.Errorf("allocations: %v, want kept's and new's", files)
	}
}

// TestServiceCIDRRoutedToTheBridge: the node's own connections to service
// addresses need a route (the bridge's address as source) ahead of the
// guard's unreachable one.
func TestServiceCIDRRoutedToTheBridge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ns := critest.NewNetNS(t)
	s, err := podnet.New(podnet.Config{DataDir: t.TempDir(), HostNetNS: ns, Bridge: "wt0", ServiceCIDR: netip.MustParsePrefix("10.98.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // again: idempotent
		if err := s.Configure(context.Background(), podCIDR); err != nil {
			t.Fatal(err)
		}
	}
	err = nsrun.At(ns, func() error {
		rs, err := netlink.RouteGet(net.ParseIP("10.98.7.7"))
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName("wt0")
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].LinkIndex != br.Attrs().Index || !rs[0].Src.Equal(net.ParseIP("10.99.0.1")) {
			return fmt.Errorf("route to 10.98.7.7: %+v, want dev wt0 src 10.99.0.1", rs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
