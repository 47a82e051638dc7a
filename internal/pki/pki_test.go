package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"testing"
	"time"
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

func newRequest(t *testing.T, cn string, orgs ...string) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSignRequest(t *testing.T) {
	ca, err := EnsureCA(t.TempDir(), "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	req := newRequest(t, "alice", "devs", "ops")
	tests := []struct {
		name     string
		validity time.Duration
		want     time.Duration // from now
	}{
		{"an hour", time.Hour, time.Hour},
		{"a year", 365 * 24 * time.Hour, 365 * 24 * time.Hour},
		{"beyond the CA: capped", 20 * 365 * 24 * time.Hour, time.Until(ca.Cert.NotAfter)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ca.SignRequest(req, x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, tt.validity)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != "CERTIFICATE" {
				t.Fatalf("not a PEM certificate: %q", data)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("does not verify as a client certificate of the CA: %v", err)
			}
			// DER orders a set of organizations by their encoding.
			if cert.Subject.CommonName != "alice" || !slices.Equal(slices.Sorted(slices.Values(cert.Subject.Organization)), []string{"devs", "ops"}) || cert.IsCA {
				t.Errorf("subject %v, CA %v: want alice in devs and ops, not a CA", cert.Subject, cert.IsCA)
			}
			if !cert.PublicKey.(*ecdsa.PublicKey).Equal(req.PublicKey) {
				t.Error("the certificate is not for the request's key")
			}
			if got := time.Until(cert.NotAfter); got > tt.want || got < tt.want-time.Minute {
				t.Errorf("valid for %v more, want %v", got, tt.want)
			}
			if got := time.Since(cert.NotBefore); got < Backdate-time.Minute || got > Backdate+time.Minute {
				t.Errorf("valid since %v ago, want %v", got, Backdate)
			}
		})
	}
	// A request whose signature does not match its key is refused.
	forged := *req
	forged.Signature = append([]byte(nil), req.Signature...)
	forged.Signature[len(forged.Signature)-1] ^= 0xff
	if _, err := ca.SignRequest(&forged, x509.KeyUsageDigitalSignature, nil, time.Hour); err == nil {
		t.Error("signed a request whose signature does not verify")
	}
}
