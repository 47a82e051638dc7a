package node

import (
	"net/netip"
	"strings"
	"testing"
)

func TestOSImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "Debian GNU/Linux 12 (bookworm)"},
		{"PRETTY_NAME='Alpine Linux v3.20'\n", "Alpine Linux v3.20"},
		{"PRETTY_NAME=Plain\n", "Plain"},
		{"NAME=x\n", ""},
	}
	for _, tt := range tests {
		if got := osImage([]byte(tt.in)); got != tt.want {
			t.Errorf("osImage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMemTotal(t *testing.T) {
	got, err := memTotal([]byte("MemTotal:       16314256 kB\nMemFree:         1000 kB\n"))
	if err != nil || got != 16314256*1024 {
		t.Errorf("memTotal = %d, %v", got, err)
	}
	if _, err := memTotal([]byte("MemFree: 1 kB\n")); err == nil {
		t.Error("memTotal without MemTotal succeeded")
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	route := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth1	0000A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0100A8C0	0003	0	0	0	00000000	0	0	0
`
	if got := defaultRouteInterface(strings.NewReader(route)); got != "eth0" {
		t.Errorf("default route interface %q, want eth0", got)
	}
	if got := defaultRouteInterface(strings.NewReader("Iface\tDestination\n")); got != "" {
		t.Errorf("no default route: got %q", got)
	}
}

func TestPickNodeIP(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		ifaces   map[string][]netip.Addr
		def      string
		want     string
		wantFail bool
	}{
		{name: "default route's interface", ifaces: map[string][]netip.Addr{"lo": {a("127.0.0.1")}, "eth0": {a("fe80::1"), a("192.168.1.5")}, "br0": {a("10.0.0.1")}}, def: "eth0", want: "192.168.1.5"},
		{name: "only address", ifaces: map[string][]netip.Addr{"lo": {a("127.0.0.1")}, "veth": {a("169.254.1.1"), a("10.20.0.3")}}, want: "10.20.0.3"},
		{name: "ambiguous", ifaces: map[string][]netip.Addr{"a": {a("10.0.0.1")}, "b": {a("10.0.1.1")}}, wantFail: true},
		{name: "loopback only", ifaces: map[string][]netip.Addr{"lo": {a("127.0.0.1")}}, wantFail: true},
	}
	for _, tt := range tests {
		got, err := pickNodeIP(tt.ifaces, tt.def)
		if (err != nil) != tt.wantFail || (err == nil && got.String() != tt.want) {
			t.Errorf("%s: %v, %v; want %s (fail %v)", tt.name, got, err, tt.want, tt.wantFail)
		}
	}
}
