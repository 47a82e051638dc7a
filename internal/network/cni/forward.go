package cni

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// rule is one iptables rule: a table, a chain and the match/target args.
type rule struct {
	table, chain string
	args         []string
}

// forwardRules accept forwarded traffic from and to the pod CIDR: pod to
// pod on the bridge (bridged frames traverse FORWARD when
// bridge-nf-call-iptables=1), pod to outside, and other hosts' pods to
// ours (host-gw routes).
func forwardRules(cidr netip.Prefix) []rule {
	c := cidr.String()
	comment := []string{"-m", "comment", "--comment", "wharf: pod CIDR " + c}
	return []rule{
		{"filter", "FORWARD", append([]string{"-s", c}, append(comment, "-j", "ACCEPT")...)},
		{"filter", "FORWARD", append([]string{"-d", c}, append(comment, "-j", "ACCEPT")...)},
	}
}

// masqueradeRules give pods' traffic leaving the cluster's pod network the
// host's address, and leave pod-to-pod traffic across hosts alone, so pods
// see each other's real addresses. One rule per node, written once, rather
// than the bridge plugin's ipMasq, which runs iptables for every pod and
// made up much of a pod's start-up cost on a busy host.
func masqueradeRules(podCIDR, clusterCIDR netip.Prefix) []rule {
	return []rule{{"nat", "POSTROUTING", []string{
		"-s", podCIDR.String(), "!", "-d", clusterCIDR.String(),
		"-m", "comment", "--comment", "wharf: masquerade pods leaving " + clusterCIDR.String(),
		"-j", "MASQUERADE",
	}}}
}

// AllowForward makes sure FORWARD accepts the pod CIDR's traffic. The rules
// go first in the chain, ahead of DOCKER-USER and a DROP policy; calling
// it again adds nothing.
func AllowForward(ctx context.Context, podCIDR string) error {
	cidr, err := parseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("allow forward: %w", err)
	}
	return ensure(ctx, cidr, forwardRules(cidr))
}

// RemoveForward removes the rules AllowForward added.
func RemoveForward(ctx context.Context, podCIDR string) error {
	cidr, err := parseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("remove forward: %w", err)
	}
	return remove(ctx, cidr, forwardRules(cidr))
}

// Masquerade makes traffic from podCIDR to outside clusterCIDR leave with
// the host's address (pod to pod keeps its source); idempotent.
func Masquerade(ctx context.Context, podCIDR, clusterCIDR string) error {
	pod, cluster, err := parseCIDRs(podCIDR, clusterCIDR)
	if err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	return ensure(ctx, pod, masqueradeRules(pod, cluster))
}

// RemoveMasquerade removes the rule Masquerade added.
func RemoveMasquerade(ctx context.Context, podCIDR, clusterCIDR string) error {
	pod, cluster, err := parseCIDRs(podCIDR, clusterCIDR)
	if err != nil {
		return fmt.Errorf("remove masquerade: %w", err)
	}
	return remove(ctx, pod, masqueradeRules(pod, cluster))
}

func parseCIDRs(podCIDR, clusterCIDR string) (netip.Prefix, netip.Prefix, error) {
	pod, err := parseCIDR(podCIDR)
	if err != nil {
		return pod, pod, err
	}
	cluster, err := parseCIDR(clusterCIDR)
	return pod, cluster, err
}

func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("CIDR %q: %w", s, err)
	}
	return p.Masked(), nil
}

// ensure inserts each missing rule at the top of its chain.
func ensure(ctx context.Context, family netip.Prefix, rules []rule) error {
	for i := len(rules) - 1; i >= 0; i-- { // inserted at 1: keep their order
		r := rules[i]
		ok, err := exists(ctx, family, r)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := iptables(ctx, family, append([]string{"-t", r.table, "-I", r.chain, "1"}, r.args...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes every copy of each rule.
func remove(ctx context.Context, family netip.Prefix, rules []rule) error {
	for _, r := range rules {
		for {
			ok, err := exists(ctx, family, r)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if _, err := iptables(ctx, family, append([]string{"-t", r.table, "-D", r.chain}, r.args...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

func exists(ctx context.Context, family netip.Prefix, r rule) (bool, error) {
	_, err := iptables(ctx, family, append([]string{"-t", r.table, "-C", r.chain}, r.args...)...)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil // "does a matching rule exist": no
	}
	return err == nil, err
}

// iptables runs iptables (ip6tables for an IPv6 family), waiting for the
// xtables lock: CNI's portmap and bridge plugins take it too.
func iptables(ctx context.Context, family netip.Prefix, args ...string) ([]byte, error) {
	bin := "iptables"
	if family.Addr().Is6() {
		bin = "ip6tables"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-w", "5"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}
