package pki

import (
	"crypto/x509"
	"testing"
)

func TestServingCertCoversHostsAndIsReused(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureCA(dir, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Hash() != again.Hash() {
		t.Fatal("EnsureCA made a new CA although one exists")
	}
	hosts := []string{"127.0.0.1", "localhost", "example.internal"}
	first, err := ca.EnsureServing(dir, "apiserver", hosts)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(first.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", h, err)
		}
	}
	same, _ := ca.EnsureServing(dir, "apiserver", hosts[:2])
	if string(same.Certificate[0]) != string(first.Certificate[0]) {
		t.Error("a covering certificate was replaced")
	}
	wider, _ := ca.EnsureServing(dir, "apiserver", append(hosts, "10.0.0.9"))
	if string(wider.Certificate[0]) == string(first.Certificate[0]) {
		t.Error("a certificate missing a host was kept")
	}
}
