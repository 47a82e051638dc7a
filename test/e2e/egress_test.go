//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"wharf.dev/wharf/internal/network/netalloc"
)

// Nothing leaves the machine by accident. For the whole suite, an
// nftables table of its own counts the packets that leave through the
// machine's default interface and concern the tests: from or to the
// ranges the tests' clusters use (provider networks, pods, services), or
// DNS queries (no component may look a name up through the machine's
// resolver). TestMain fails the suite unless every counter is zero.

// testRanges hold every range wharf allocates by default: provider
// networks (10.123.0.0/16), service CIDRs (10.96.0.0/12, 10.64.0.0/11)
// and pod CIDRs (10.244.0.0/16 within 10.224.0.0/11).
var testRanges = []string{"10.64.0.0/10", "10.224.0.0/11"}

type egressCounter struct {
	table, iface string
	// netns runs the counter in a test namespace ("": the machine's).
	netns string
}

var egressCounters = []string{"from_test_ranges", "to_test_ranges", "dns"}

// startEgressCounter installs the counting table on the machine's default
// interface; stale tables of killed runs go first.
func startEgressCounter() (*egressCounter, error) {
	removeStaleEgressTables()
	iface, err := defaultInterface()
	if err != nil {
		return nil, err
	}
	return installEgressCounter("", iface)
}

// nft runs nft in the counter's namespace.
func (e *egressCounter) nft(stdin string, args ...string) ([]byte, error) {
	if e.netns != "" {
		args = append([]string{"netns", "exec", e.netns, "nft"}, args...)
	}
	bin := "nft"
	if e.netns != "" {
		bin = "ip"
	}
	cmd := exec.Command(bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}

func installEgressCounter(netns, iface string) (*egressCounter, error) {
	// The machine's own resolvers and gateways are not test addresses,
	// even inside a test range (a resolver at 10.255.255.53).
	infra := []string{}
	for _, a := range netalloc.Resolvers("/etc/resolv.conf") {
		infra = append(infra, a.String())
	}
	if routes, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
		for _, r := range routes {
			if r.Gw != nil {
				infra = append(infra, r.Gw.String())
			}
		}
	}
	if len(infra) == 0 {
		infra = append(infra, "0.0.0.0")
	}
	e := &egressCounter{table: fmt.Sprintf("wharf-e2e-egress-%d", os.Getpid()), iface: iface, netns: netns}
	ranges := strings.Join(testRanges, ", ")
	ruleset := fmt.Sprintf(`table inet %[1]s {
	counter from_test_ranges {}
	counter to_test_ranges {}
	counter dns {}
	chain out {
		type filter hook postrouting priority 0; policy accept;
		oifname %[2]q ip saddr { %[3]s } counter name from_test_ranges
		oifname %[2]q ip daddr != { %[4]s } ip daddr { %[3]s } counter name to_test_ranges
		oifname %[2]q meta l4proto { tcp, udp } th dport 53 counter name dns
	}
}
`, e.table, iface, ranges, strings.Join(infra, ", "))
	if out, err := e.nft(ruleset, "-f", "-"); err != nil {
		return nil, fmt.Errorf("nft: %v: %s\n%s", err, out, ruleset)
	}
	return e, nil
}

// counts reads the counters: name → packets.
func (e *egressCounter) counts() (map[string]int, error) {
	out := map[string]int{}
	re := regexp.MustCompile(`packets (\d+)`)
	for _, name := range egressCounters {
		data, err := e.nft("", "list", "counter", "inet", e.table, name)
		if err != nil {
			return nil, fmt.Errorf("nft list counter %s: %v: %s", name, err, data)
		}
		m := re.FindSubmatch(data)
		if m == nil {
			return nil, fmt.Errorf("counter %s: no packets in %q", name, data)
		}
		out[name], _ = strconv.Atoi(string(m[1]))
	}
	return out, nil
}

// check returns an error naming every counter that is not zero.
func (e *egressCounter) check() error {
	counts, err := e.counts()
	if err != nil {
		return err
	}
	var bad []string
	for _, name := range egressCounters {
		if counts[name] > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d packets", name, counts[name]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("packets left through %s during the tests: %s (ranges %v; table inet %s; a DNS query may also come from another program on this machine)", e.iface, strings.Join(bad, ", "), testRanges, e.table)
	}
	return nil
}

func (e *egressCounter) remove() { e.nft("", "delete", "table", "inet", e.table) }

// removeStaleEgressTables deletes the tables of runs whose process is gone.
func removeStaleEgressTables() {
	out, _ := exec.Command("nft", "list", "tables", "inet").Output()
	for _, m := range regexp.MustCompile(`wharf-e2e-egress-(\d+)`).FindAllStringSubmatch(string(out), -1) {
		if pid, _ := strconv.Atoi(m[1]); pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue
			}
		}
		exec.Command("nft", "delete", "table", "inet", m[0]).Run()
	}
}

// defaultInterface is the interface of the machine's default route.
func defaultInterface() (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", err
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return "", err
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("no default route")
}

// TestEgressCounterCounts: the counter TestMain relies on does count. In a
// namespace of the test's own whose default route leaves through a veth
// (nothing reaches the machine's network), a packet to a test range and a
// DNS query are counted, and a packet elsewhere is not.
func TestEgressCounterCounts(t *testing.T) {
	ns := fmt.Sprintf("wharf-e2e-egress-test-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	for _, args := range [][]string{
		{"link", "add", "out0", "type", "veth", "peer", "name", "sink0"},
		{"addr", "add", "203.0.113.2/24", "dev", "out0"},
		{"link", "set", "out0", "up"},
		{"link", "set", "sink0", "up"},
		{"link", "set", "lo", "up"},
		{"route", "add", "default", "via", "203.0.113.1"},
		// The gateway answers ARP nowhere: give it a neighbour entry so
		// packets are sent (and counted) instead of waiting for one.
		{"neigh", "add", "203.0.113.1", "lladdr", "02:00:00:00:00:01", "dev", "out0"},
	} {
		ip(append([]string{"-n", ns}, args...)...)
	}
	e, err := installEgressCounter(ns, "out0")
	if err != nil {
		t.Fatal(err)
	}
	send := func(addr string) {
		t.Helper()
		// A UDP datagram from inside the namespace: nc is not assumed;
		// bash's /dev/udp is.
		if out, err := exec.Command("ip", "netns", "exec", ns, "bash", "-c", "echo x > /dev/udp/"+addr).CombinedOutput(); err != nil {
			t.Fatalf("send to %s: %v: %s", addr, err, out)
		}
	}
	send("10.123.7.7/9")    // a test range
	send("198.51.100.7/53") // a DNS query
	send("198.51.100.8/9")  // elsewhere: not counted
	counts, err := e.counts()
	if err != nil {
		t.Fatal(err)
	}
	if counts["to_test_ranges"] != 1 || counts["dns"] != 1 || counts["from_test_ranges"] != 0 {
		t.Errorf("counts %v, want to_test_ranges 1, dns 1, from_test_ranges 0", counts)
	}
	if err := e.check(); err == nil {
		t.Error("check passed with packets counted")
	}
}
