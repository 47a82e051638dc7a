package podnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// allocateN allocates n addresses and returns them, or stops at the
// first error.
func allocateN(t *testing.T, a *ipam, n int) ([]string, error) {
	t.Helper()
	var got []string
	for i := 0; i < n; i++ {
		al, err := a.allocate(allocation{ContainerID: "c" + string(rune('a'+len(a.byIP))), IfName: "eth0", Created: time.Now()})
		if err != nil {
			return got, err
		}
		got = append(got, al.IP.String())
	}
	return got, nil
}

func TestIPAMAllocates(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		n            int
		want         []string
		exhausted    bool
	}{
		// .0 network, .1 the bridge, .7 broadcast.
		{"IPv4 /29", "10.244.3.0/29", 6, []string{"10.244.3.2", "10.244.3.3", "10.244.3.4", "10.244.3.5", "10.244.3.6"}, true},
		{"IPv4 /24, masked", "10.244.3.77/24", 2, []string{"10.244.3.2", "10.244.3.3"}, false},
		// No broadcast address in IPv6: the last one is a pod's.
		{"IPv6 /126", "fd00:1::/126", 3, []string{"fd00:1::2", "fd00:1::3"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, errs := loadIPAM(t.TempDir(), netip.MustParsePrefix(tc.prefix))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			got, err := allocateN(t, a, tc.n)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if (err != nil) != tc.exhausted {
				t.Errorf("error %v, want exhausted: %v", err, tc.exhausted)
			}
		})
	}
}

// A released address is not the next one handed out (round-robin), but
// is used again once the others are.
func TestIPAMRoundRobin(t *testing.T) {
	a, _ := loadIPAM(t.TempDir(), netip.MustParsePrefix("10.0.0.0/29"))
	got, _ := allocateN(t, a, 2) // .2 .3
	if err := a.release(a.byIP[netip.MustParseAddr(got[0])]); err != nil {
		t.Fatal(err)
	}
	next, err := allocateN(t, a, 4) // .4 .5 .6, then .2 again
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"}, next); diff != "" {
		t.Errorf("after a release (-want +got):\n%s", diff)
	}
}

// Allocations survive a restart (the files), and the next address goes on
// after the newest one; a file that does not parse is dropped.
func TestIPAMReloads(t *testing.T) {
	dir := t.TempDir()
	prefix := netip.MustParsePrefix("10.0.0.0/24")
	a, _ := loadIPAM(dir, prefix)
	allocateN(t, a, 3)
	if err := os.WriteFile(filepath.Join(dir, "10.0.0.9"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	b, errs := loadIPAM(dir, prefix)
	if len(errs) != 1 {
		t.Errorf("errors %v, want one for the broken file", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "10.0.0.9")); !os.IsNotExist(err) {
		t.Errorf("broken file kept (%v)", err)
	}
	if diff := cmp.Diff(a.byIP, b.byIP, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("reloaded allocations (-want +got):\n%s", diff)
	}
	if al := b.find("cb", "eth0"); al == nil || al.IP != netip.MustParseAddr("10.0.0.3") {
		t.Errorf("find cb/eth0 = %+v", al)
	}
	got, _ := allocateN(t, b, 1)
	if diff := cmp.Diff([]string{"10.0.0.5"}, got); diff != "" {
		t.Errorf("first address after a reload (-want +got):\n%s", diff)
	}
}
