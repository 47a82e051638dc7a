package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// HostPort is one published port of a pod: traffic to the node on
// HostPort (at HostIP, or at any of its addresses if HostIP is invalid)
// goes to PodIP:ContainerPort.
type HostPort struct {
	Protocol      string // tcp, udp or sctp
	HostIP        netip.Addr
	HostPort      uint16
	PodIP         netip.Addr
	ContainerPort uint16
}

// hostPortMark marks connections to a hostPort that must be masqueraded:
// from the node itself (127.0.0.1, which must not leave the host as a
// source) and from the pod to its own hostPort (hairpin). The bit is the
// one the portmap plugin used; kube-proxy's are 0x4000 and 0x8000.
const hostPortMark = "0x2000/0x2000"

// hostPortChains names the node's two nat chains: DNAT of the hostPorts
// (from PREROUTING and OUTPUT, for local destinations) and the masquerade
// of marked connections (from POSTROUTING). The bridge's name makes them
// the node's (at most 28 bytes: bridge names have 15).
func hostPortChains(bridge string) (dnat, masq string) {
	return "WHARF-HP-" + bridge, "WHARF-HPM-" + bridge
}

func hostPortJumps(bridge string) []rule {
	dnat, masq := hostPortChains(bridge)
	comment := []string{"-m", "comment", "--comment", "wharf: hostPorts of " + bridge}
	local := append([]string{"-m", "addrtype", "--dst-type", "LOCAL"}, comment...)
	return []rule{
		{"nat", "PREROUTING", append(append([]string{}, local...), "-j", dnat)},
		{"nat", "OUTPUT", append(append([]string{}, local...), "-j", dnat)},
		{"nat", "POSTROUTING", append(append([]string{}, comment...), "-j", masq)},
	}
}

// SyncHostPorts makes the node's hostPort rules those of ports (all of
// them, for every pod of the node): the chains are rewritten whole by one
// iptables-restore, then the jumps to them added if missing. podCIDR
// selects iptables or ip6tables; ports of the other family are skipped.
func SyncHostPorts(ctx context.Context, bridge, podCIDR string, ports []HostPort) error {
	family, err := parseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("hostPorts: %w", err)
	}
	if err := restore(ctx, family, hostPortRules(bridge, family, ports)); err != nil {
		return fmt.Errorf("hostPorts: %w", err)
	}
	if err := ensure(ctx, family, hostPortJumps(bridge)); err != nil {
		return fmt.Errorf("hostPorts: %w", err)
	}
	return nil
}

// RemoveHostPorts removes the jumps and chains SyncHostPorts made.
func RemoveHostPorts(ctx context.Context, bridge, podCIDR string) error {
	family, err := parseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("remove hostPorts: %w", err)
	}
	dnat, masq := hostPortChains(bridge)
	jumps := hostPortJumps(bridge)
	var errs []error
	for _, c := range []struct {
		chain string
		jumps []rule
	}{{dnat, jumps[:2]}, {masq, jumps[2:]}} {
		ok, err := chainExists(ctx, family, "nat", c.chain)
		if err != nil || !ok {
			errs = append(errs, err)
			continue // no chain, no jump to it either
		}
		errs = append(errs, remove(ctx, family, c.jumps))
		for _, op := range []string{"-F", "-X"} {
			if _, err := iptables(ctx, family, "-t", "nat", op, c.chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove hostPorts: %w", err)
	}
	return nil
}

// hostPortRules is the iptables-restore input that rewrites both chains:
// as the portmap plugin did, each port first marks connections from the
// pod itself and from 127.0.0.1 for masquerading, then DNATs.
func hostPortRules(bridge string, family netip.Prefix, ports []HostPort) string {
	dnat, masq := hostPortChains(bridge)
	sorted := append([]HostPort(nil), ports...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.HostIP.Less(b.HostIP)
	})
	v6 := family.Addr().Is6()
	var b strings.Builder
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n:%s - [0:0]\n", dnat, masq)
	fmt.Fprintf(&b, "-A %s -m mark --mark %s -j MASQUERADE\n", masq, hostPortMark)
	for _, p := range sorted {
		if p.PodIP.Is6() != v6 || (p.HostIP.IsValid() && p.HostIP.Is6() != v6) {
			continue
		}
		match := fmt.Sprintf("-A %s -p %s --dport %d", dnat, p.Protocol, p.HostPort)
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			match += " -d " + p.HostIP.String()
		}
		match += fmt.Sprintf(" -m comment --comment %q", "wharf: hostPort "+strconv.Itoa(int(p.HostPort))+"/"+p.Protocol)
		fmt.Fprintf(&b, "%s -s %s -j MARK --set-xmark %s\n", match, netip.PrefixFrom(p.PodIP, p.PodIP.BitLen()), hostPortMark)
		if !v6 {
			fmt.Fprintf(&b, "%s -s 127.0.0.1/32 -j MARK --set-xmark %s\n", match, hostPortMark)
		}
		fmt.Fprintf(&b, "%s -j DNAT --to-destination %s\n", match, netip.AddrPortFrom(p.PodIP, p.ContainerPort))
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// restore feeds rules to iptables-restore without flushing the table:
// only the chains declared in rules are rewritten.
func restore(ctx context.Context, family netip.Prefix, rules string) error {
	bin := "iptables-restore"
	if family.Addr().Is6() {
		bin = "ip6tables-restore"
	}
	cmd := exec.CommandContext(ctx, bin, "--noflush", "-w", "5")
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// chainExists says whether table has chain.
func chainExists(ctx context.Context, family netip.Prefix, table, chain string) (bool, error) {
	_, err := iptables(ctx, family, "-t", table, "-n", "-L", chain)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil // "No chain/target/match by that name"
	}
	return err == nil, err
}
