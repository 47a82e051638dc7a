package up

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMissingPackagesMakeOneLine(t *testing.T) {
	cases := []struct {
		name    string
		absent  []string
		want    []string
		message string
	}{
		{"all there", nil, nil, ""},
		{"containerd missing", []string{"containerd"}, []string{"containerd"}, "apt-get install -y containerd"},
		{"two commands", []string{"iptables", "runc"},
			[]string{"runc", "iptables"}, "apt-get install -y runc iptables"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			absent := map[string]bool{}
			for _, a := range tc.absent {
				absent[a] = true
			}
			got := missingPackages(func(p string) bool { return !absent[p] })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("missing packages (-want +got):\n%s", diff)
			}
			err := missingError(got)
			if (err == nil) != (tc.message == "") || err != nil && (!strings.Contains(err.Error(), tc.message) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("error %v, want one line with %q", err, tc.message)
			}
		})
	}
}
