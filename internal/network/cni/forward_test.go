package cni_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/nsrun"
)

// TestForwardRulesIdempotent runs in a throwaway network namespace with a
// Docker-like FORWARD DROP policy, so the machine's own rules stay as
// they are. (Pods reaching each other through these rules is part of the
// CRI conformance run on a real containerd, internal/cri.)
func TestForwardRulesIdempotent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
	ns := critest.NewNetNS(t)
	ctx := context.Background()
	iptables := func(args ...string) string {
		t.Helper()
		var out []byte
		err := nsrun.At(ns, func() error {
			var err error
			out, err = exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
			return err
		})
		if err != nil {
			t.Fatalf("iptables %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	in := func(fn func() error) {
		t.Helper()
		if err := nsrun.At(ns, fn); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table, chain, cidr string) int {
		n := 0
		for _, l := range strings.Split(iptables("-t", table, "-S", chain), "\n") {
			if strings.Contains(l, cidr) {
				n++
			}
		}
		return n
	}

	iptables("-P", "FORWARD", "DROP")
	iptables("-A", "FORWARD", "-j", "DROP") // our rules must come before it
	for i := 0; i < 2; i++ {
		in(func() error { return cni.AllowForward(ctx, "10.244.3.0/24") })
		in(func() error { return cni.Masquerade(ctx, "10.244.3.0/24", "10.244.0.0/16") })
	}
	if n := count("filter", "FORWARD", "10.244.3.0/24"); n != 2 {
		t.Errorf("FORWARD has %d rules for the pod CIDR, want 2:\n%s", n, iptables("-S", "FORWARD"))
	}
	if first := strings.Split(iptables("-S", "FORWARD"), "\n")[1]; !strings.Contains(first, "10.244.3.0/24") {
		t.Errorf("first FORWARD rule %q: want ours ahead of the DROP", first)
	}
	if n := count("nat", "POSTROUTING", "10.244.0.0/16"); n != 1 {
		t.Errorf("POSTROUTING has %d masquerade rules, want 1:\n%s", n, iptables("-t", "nat", "-S", "POSTROUTING"))
	}

	for i := 0; i < 2; i++ {
		in(func() error { return cni.RemoveForward(ctx, "10.244.3.0/24") })
		in(func() error { return cni.RemoveMasquerade(ctx, "10.244.3.0/24", "10.244.0.0/16") })
	}
	if n := count("filter", "FORWARD", "10.244.3.0/24") + count("nat", "POSTROUTING", "10.244.0.0/16"); n != 0 {
		t.Errorf("%d rules left after removal", n)
	}
	if err := cni.AllowForward(ctx, "not-a-cidr"); err == nil {
		t.Errorf("bad CIDR: no error")
	}
}
