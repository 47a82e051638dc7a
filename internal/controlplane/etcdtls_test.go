package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/pki"
)

// TestDialEtcdRefusesBadSettings: settings that cannot work fail at once,
// naming the flag or endpoint, before any connection is tried.
func TestDialEtcdRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueClient(dir, "client", "wharf", nil)
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	for _, tc := range []struct {
		name      string
		endpoints []string
		tls       EtcdTLS
		want      string
	}{
		{"missing CA", []string{"https://127.0.0.1:1"}, EtcdTLS{CAFile: filepath.Join(dir, "nope.crt")}, "--etcd-cafile: open " + dir + "/nope.crt"},
		{"CA not PEM", []string{"https://127.0.0.1:1"}, EtcdTLS{CAFile: notPEM}, "no PEM certificate"},
		{"certificate without key", []string{"https://127.0.0.1:1"}, EtcdTLS{CAFile: caFile, CertFile: cert}, "--etcd-certfile and --etcd-keyfile go together"},
		{"missing key", []string{"https://127.0.0.1:1"}, EtcdTLS{CAFile: caFile, CertFile: cert, KeyFile: key + ".gone"}, "--etcd-keyfile: stat " + key + ".gone"},
		{"key of another certificate", []string{"https://127.0.0.1:1"}, EtcdTLS{CertFile: cert, KeyFile: filepath.Join(dir, "ca.key")}, "private key does not match public key"},
		{"TLS files with http", []string{"http://127.0.0.1:1"}, EtcdTLS{CAFile: caFile}, "http://127.0.0.1:1 is plain http"},
		{"not a URL", []string{"ftp://127.0.0.1:1"}, EtcdTLS{}, `"ftp://127.0.0.1:1" is not an http:// or https:// URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialEtcd(context.Background(), tc.endpoints, tc.tls)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q in it", err, tc.want)
			}
		})
	}
}
