package announce

import (
	"net/netip"
	"testing"
)

// addrs300 is 10.0.0.1 to 10.0.1.44.
func addrs300() []netip.Addr {
	var out []netip.Addr
	a := netip.MustParseAddr("10.0.0.0")
	for range 300 {
		a = a.Next()
		out = append(out, a)
	}
	return out
}

// TestOwnerGolden pins the hash: nodes running different builds during
// an upgrade must compute the same owners.
func TestOwnerGolden(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c"}
	for _, tc := range []struct{ addr, want string }{
		{"10.0.0.1", "node-b"},
		{"10.0.0.2", "node-a"},
		{"192.168.1.100", "node-c"},
		{"172.18.0.50", "node-b"},
		{"10.77.0.100", "node-a"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := Owner(netip.MustParseAddr(tc.addr), nodes); got != tc.want {
				t.Errorf("Owner(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	all := []string{"node-a", "node-b", "node-c"}
	for _, tc := range []struct {
		name       string
		candidates []string
		want       func(addr netip.Addr, before string) string
	}{
		{"same set in another order", []string{"node-c", "node-a", "node-b"},
			func(_ netip.Addr, before string) string { return before }},
		{"duplicates", []string{"node-b", "node-a", "node-c", "node-a"},
			func(_ netip.Addr, before string) string { return before }},
		// Only node-b's addresses move, and only to a remaining node.
		{"node-b removed", []string{"node-a", "node-c"},
			func(a netip.Addr, before string) string {
				if before == "node-b" {
					return Owner(a, []string{"node-a", "node-c"})
				}
				return before
			}},
		// Only addresses moving to node-d move.
		{"node-d added", []string{"node-a", "node-b", "node-c", "node-d"},
			func(a netip.Addr, before string) string {
				if weight(a, "node-d") > weight(a, before) {
					return "node-d"
				}
				return before
			}},
		{"one candidate", []string{"node-c"},
			func(netip.Addr, string) string { return "node-c" }},
		{"none", nil,
			func(netip.Addr, string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moved := 0
			for _, a := range addrs300() {
				before := Owner(a, all)
				got, want := Owner(a, tc.candidates), tc.want(a, before)
				if got != want {
					t.Errorf("Owner(%s) = %q, want %q (before: %q)", a, got, want, before)
				}
				if got != before {
					moved++
				}
			}
			t.Logf("%d of 300 addresses moved", moved)
		})
	}
}

func TestOwnerSpread(t *testing.T) {
	count := map[string]int{}
	for _, a := range addrs300() {
		count[Owner(a, []string{"node-a", "node-b", "node-c"})]++
	}
	t.Logf("owners of 300 addresses: %v", count)
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		// 100 expected; ±30 is more than 5 standard deviations (8.2).
		if count[n] < 70 || count[n] > 130 {
			t.Errorf("%s owns %d of 300 addresses, want about 100", n, count[n])
		}
	}
}
