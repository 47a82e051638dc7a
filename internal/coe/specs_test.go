package coe

import (
	"slices"
	"strings"
	"testing"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
)

// TestWorkerResolver: the template's dns_nameserver decides what pods
// resolve with; "none" gives them no resolver, never the machine's.
func TestWorkerResolver(t *testing.T) {
	for _, tc := range []struct {
		nameserver string
		args       []string
		file       string
	}{
		{"", nil, ""},
		{"none", []string{"--resolv-conf="}, ""},
		{"10.0.0.53", []string{"--resolv-conf", "$(STATE_DIR)/resolv.conf"}, "nameserver 10.0.0.53\n"},
	} {
		s := &hostSpecs{e: &env{ref: provider.ClusterRef{Name: "c", UID: "0123456789"},
			tmpl: wharfv1.ClusterTemplateSpec{Network: wharfv1.Network{DNSNameserver: tc.nameserver}}}, cr: &credentials{}}
		spec := s.worker("c-node-0")
		i := slices.IndexFunc(spec.Args, func(a string) bool { return strings.HasPrefix(a, "--resolv-conf") })
		var got []string
		if i >= 0 {
			got = spec.Args[i:min(i+len(tc.args), len(spec.Args))]
		}
		if !slices.Equal(got, tc.args) {
			t.Errorf("dns_nameserver %q: resolver args %q, want %q", tc.nameserver, got, tc.args)
		}
		if f := string(spec.Files[fileResolvConf]); f != tc.file {
			t.Errorf("dns_nameserver %q: resolv.conf %q, want %q", tc.nameserver, f, tc.file)
		}
	}
}
