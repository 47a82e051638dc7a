package netalloc

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func snapshot(prefixes ...string) *Snapshot {
	s := &Snapshot{Links: map[string]string{}}
	for _, p := range prefixes {
		s.Holders = append(s.Holders, Holder{Prefix: netip.MustParsePrefix(p), What: "held " + p})
	}
	return s
}

func TestFree(t *testing.T) {
	pool := netip.MustParsePrefix("10.123.0.0/16")
	first := netip.MustParsePrefix("10.123.0.0/24")
	for _, tc := range []struct {
		name string
		held []string
		bits int
		want string
	}{
		{"nothing held: the first choice", nil, 24, "10.123.0.0/24"},
		{"first held", []string{"10.123.0.0/24"}, 24, "10.123.1.0/24"},
		{"a host route inside", []string{"10.123.0.7/32", "10.123.1.0/25"}, 24, "10.123.2.0/24"},
		{"a wider range over the start", []string{"10.123.0.0/23"}, 24, "10.123.2.0/24"},
		{"a resolver", []string{"10.123.0.53/32"}, 24, "10.123.1.0/24"},
		{"the whole pool", []string{"10.0.0.0/8"}, 24, ""},
		{"smaller blocks", []string{"10.123.0.0/24"}, 26, "10.123.1.0/26"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := snapshot(tc.held...).Free(pool, tc.bits, first)
			if tc.want == "" {
				if err == nil {
					t.Errorf("Free = %s, want an error", got)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Errorf("Free = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, err := snapshot().Free(pool, 8, netip.Prefix{}); err == nil {
		t.Error("a /8 out of a /16: no error")
	}
}

func TestOverlapping(t *testing.T) {
	s := snapshot("10.123.0.0/24", "10.96.0.0/12", "192.0.2.1/32")
	s.Holders[0].Link = "mine"
	got := s.Overlapping(netip.MustParsePrefix("10.0.0.0/8"), func(h Holder) bool { return h.Link == "mine" })
	var what []string
	for _, h := range got {
		what = append(what, h.What)
	}
	if want := []string{"held 10.96.0.0/12"}; !slices.Equal(what, want) {
		t.Errorf("Overlapping = %q, want %q", what, want)
	}
	if d := Describe(got); !strings.Contains(d, "10.96.0.0/12") {
		t.Errorf("Describe = %q", d)
	}
}

func TestResolvers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(path, []byte("# comment\nnameserver 10.255.255.53\nnameserver ::1\nsearch example\nnameserver 192.0.2.9\n"), 0o644)
	got := Resolvers(path)
	if len(got) != 2 || got[0].String() != "10.255.255.53" || got[1].String() != "192.0.2.9" {
		t.Errorf("Resolvers = %v", got)
	}
	if Resolvers(filepath.Join(t.TempDir(), "missing")) != nil {
		t.Error("a missing file has resolvers")
	}
}

// TestScanSeesTheMachine: the machine's own ranges are held (root: the
// real namespace's routes; the loopback is never a holder).
func TestScanSeesTheMachine(t *testing.T) {
	s, err := Scan()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.LinkAlias("lo"); !ok {
		t.Error("no lo in the snapshot")
	}
	for _, h := range s.Holders {
		if h.Prefix.Addr().IsLoopback() {
			t.Errorf("the loopback holds %s", h.What)
		}
	}
}

// TestLock: a second taker waits for the first (another process's open
// file excludes it just the same: flock conflicts between open files).
func TestLock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock lives in /run/wharf")
	}
	unlock, err := Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if second, err := Lock(ctx); err == nil {
		second()
		t.Fatal("a second Lock succeeded while the first was held")
	}
	unlock()
	again, err := Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	again()
}
