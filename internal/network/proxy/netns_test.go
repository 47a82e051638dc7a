package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/nsrun"
)

// A test node is a network namespace with a bridge and pods in namespaces
// of their own, wired as podnet wires them (veth pairs on the bridge,
// hairpin on, the bridge's address as the pods' gateway): nothing touches
// the machine's own network, and the proxy's table lives in the node's
// namespace.
const (
	bridge      = "wsp0"
	gateway     = "10.98.0.1"
	podCIDR     = "10.98.0.0/24"
	serviceCIDR = "10.96.0.0/16"
)

type testNode struct {
	t  testing.TB
	ns string // path
}

type testPod struct {
	name, ns string
	ip       netip.Addr
}

// needRoot skips tests that need root and the tools.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"ip", "nft", "sysctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
}

func newTestNode(t testing.TB) *testNode {
	t.Helper()
	needRoot(t)
	n := &testNode{t: t, ns: critest.NewNetNS(t)}
	n.ip("link", "add", bridge, "type", "bridge")
	n.ip("addr", "add", gateway+"/24", "dev", bridge)
	n.ip("link", "set", bridge, "up")
	// What the node agent must do too: without a route the node has no
	// source address for a cluster IP, and pods' packets to a cluster IP
	// without endpoints are dropped instead of reaching the reject rules.
	n.ip("route", "add", serviceCIDR, "dev", bridge)
	// icmp_ratelimit: on this kernel the per-host ICMP limit dropped every
	// port unreachable the reject rules sent to a pod, the first one too,
	// so UDP clients saw no refusal (TCP gets a reset, not limited).
	name := filepath.Base(n.ns)
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1", "net.ipv4.icmp_ratelimit=0"} {
		if out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-w", kv).CombinedOutput(); err != nil {
			t.Skipf("sysctl %s: %v: %s (bridge-nf-call-iptables needs br_netfilter)", kv, err, out)
		}
	}
	return n
}

// ip runs ip(8) in the node's namespace.
func (n *testNode) ip(args ...string) {
	n.t.Helper()
	args = append([]string{"-n", filepath.Base(n.ns)}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// addPod makes a pod with address ip, serving "<name> <client address>"
// on TCP port 8080 and UDP port 5353.
func (n *testNode) addPod(name, ip string) *testPod {
	n.t.Helper()
	p := &testPod{name: name, ns: critest.NewNetNS(n.t), ip: netip.MustParseAddr(ip)}
	host := "wsp-" + name
	n.ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", filepath.Base(p.ns))
	n.ip("link", "set", host, "master", bridge, "up")
	n.ip("link", "set", host, "type", "bridge_slave", "hairpin", "on")
	in := func(args ...string) {
		args = append([]string{"-n", filepath.Base(p.ns)}, args...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			n.t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	in("addr", "add", ip+"/24", "dev", "eth0")
	in("link", "set", "eth0", "up")
	in("route", "add", "default", "via", gateway)

	var ln net.Listener
	var pc net.PacketConn
	if err := nsrun.At(p.ns, func() (err error) {
		if ln, err = net.Listen("tcp", ":8080"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", ":5353")
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { ln.Close(); pc.Close() })
	go serve(ln, func(net.Addr) string { return name + " " })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			pc.WriteTo([]byte(name+" "+host), from)
		}
	}()
	return p
}

// serve answers each connection to ln with answer(client) followed by
// the client's address, until ln is closed.
func serve(ln net.Listener, prefix func(net.Addr) string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s%s", prefix(c.RemoteAddr()), host)
		c.Close()
	}
}

// listen opens a socket of the node itself, answering "node <client>".
func (n *testNode) listen(network, addr string) net.Listener {
	n.t.Helper()
	var ln net.Listener
	if err := nsrun.At(n.ns, func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
	go serve(ln, func(net.Addr) string { return "node " })
	return ln
}

// addOutside makes a host outside the node: a namespace linked to the
// node by a veth pair, the node's end with nodeIP/24 (its address, as
// eth0's on a cluster's host), the host's with clientIP/24. It returns
// the host's namespace.
func (n *testNode) addOutside(nodeIP, clientIP string) string {
	n.t.Helper()
	ns := critest.NewNetNS(n.t)
	n.ip("link", "add", "wsp-out", "type", "veth", "peer", "name", "eth0", "netns", filepath.Base(ns))
	n.ip("addr", "add", nodeIP+"/24", "dev", "wsp-out")
	n.ip("link", "set", "wsp-out", "up")
	for _, args := range [][]string{{"addr", "add", clientIP + "/24", "dev", "eth0"}, {"link", "set", "eth0", "up"}, {"link", "set", "lo", "up"}} {
		args = append([]string{"-n", filepath.Base(ns)}, args...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			n.t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	return ns
}

// nft returns a handle of table in the node's namespace, as the agent
// would make it (New with a nil Config.NFT).
func (n *testNode) nft(table string) knftables.Interface {
	n.t.Helper()
	var nft knftables.Interface
	if err := nsrun.At(n.ns, func() (err error) {
		nft, err = knftables.New(knftables.IPv4Family, table, knftables.UseNetlink)
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		if err := nsrun.At(n.ns, func() error { return Remove(context.Background(), nft) }); err != nil {
			n.t.Errorf("Remove: %v", err)
		}
	})
	return nft
}

// proxy returns a Proxy made in the node's namespace as the agent makes
// it (cfg.NFT nil: nft and netlink); its table is removed at the end.
func (n *testNode) proxy(cfg Config) *Proxy {
	n.t.Helper()
	n.nft(cfg.Table)
	var p *Proxy
	if err := nsrun.At(n.ns, func() (err error) {
		p, err = New(cfg)
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
	return p
}

// sync runs p.Sync in the node's namespace.
func (n *testNode) sync(p *Proxy) {
	n.t.Helper()
	if err := nsrun.At(n.ns, func() error { return p.Sync(context.Background()) }); err != nil {
		n.t.Fatal(err)
	}
}

// dial connects from the namespace ns to addr and returns the answer: the
// pod's name and the client address it saw. It gives up after 3 s.
func dial(ns, network, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return dialCtx(ctx, ns, network, addr)
}

// dialCtx is dial until ctx is done.
func dialCtx(ctx context.Context, ns, network, addr string) (string, error) {
	conn, err := critest.DialIn(ctx, ns, network, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if network == "udp" {
		if _, err := conn.Write([]byte("ping")); err != nil {
			return "", err
		}
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	data, err := io.ReadAll(conn)
	return string(data), err
}
