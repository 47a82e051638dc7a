// Package pki makes and keeps the certificates of a Wharf control plane: a
// CA, the API server's serving certificate, and client certificates, all
// ECDSA P-256, stored as PEM files in a directory.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

// CA is a certificate authority kept in a directory.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Pool is a certificate pool holding the CA, to verify what it signed.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Hash identifies the CA: "sha256:<hex of the certificate's DER>". Agents
// that know it can trust a server before they have the CA itself.
func (ca *CA) Hash() string {
	sum := sha256.Sum256(ca.Cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EnsureCA loads ca.crt and ca.key from dir, making them on first use.
func EnsureCA(dir, name string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if cert, key, certPEM, err := load(certFile, keyFile); err == nil {
		return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := save(dir, certFile, keyFile, der, key); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key, CertPEM: pemCert(der)}, nil
}

// EnsureServing loads <name>.crt/.key from dir, or issues a new serving
// certificate when missing, expiring within 30 days, or not covering hosts.
func (ca *CA) EnsureServing(dir, name string, hosts []string) (tls.Certificate, error) {
	certFile, keyFile, err := ca.ensureHost(dir, name, hosts, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}

// EnsurePeer is EnsureServing for a certificate that also authenticates
// its holder as a client, as an etcd member's does towards its peers; it
// returns the files' paths, which is what etcd takes.
func (ca *CA) EnsurePeer(dir, name string, hosts []string) (certFile, keyFile string, err error) {
	return ca.ensureHost(dir, name, hosts, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) ensureHost(dir, name string, hosts []string, usages ...x509.ExtKeyUsage) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if cert, _, _, err := load(certFile, keyFile); err == nil && covers(cert, hosts) && time.Until(cert.NotAfter) > 30*24*time.Hour {
		return certFile, keyFile, nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usages,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return certFile, keyFile, ca.issue(dir, certFile, keyFile, tmpl)
}

// IssueClient issues a client certificate for user in groups (Subject CN and O).
func (ca *CA) IssueClient(dir, name, user string, groups []string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if _, _, _, err := load(certFile, keyFile); err == nil {
		return certFile, keyFile, nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return certFile, keyFile, ca.issue(dir, certFile, keyFile, tmpl)
}

func (ca *CA) issue(dir, certFile, keyFile string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	now := time.Now()
	der, err := ca.sign(tmpl, &key.PublicKey, now.Add(-time.Hour), now.Add(certValidity))
	if err != nil {
		return err
	}
	return save(dir, certFile, keyFile, der, key)
}

// sign makes tmpl a certificate of pub signed by the CA, valid from
// notBefore to notAfter but never beyond the CA itself.
func (ca *CA) sign(tmpl *x509.Certificate, pub any, notBefore, notAfter time.Time) ([]byte, error) {
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// Backdate is how far before its signing a certificate of SignRequest
// starts to be valid, for clients whose clocks are a little behind (as
// Kubernetes' signer, 5 minutes).
const Backdate = 5 * time.Minute

// SignRequest issues a certificate for the public key and subject of a
// certificate request whose signature has been checked, as Kubernetes'
// signer does: the request's subject and names, the given usages, not a
// CA, valid for validity from now (backdated by Backdate) and never
// beyond the CA. It returns the certificate as PEM.
func (ca *CA) SignRequest(req *x509.CertificateRequest, usage x509.KeyUsage, extUsages []x509.ExtKeyUsage, validity time.Duration) ([]byte, error) {
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request of %q: %w", req.Subject.CommonName, err)
	}
	tmpl := &x509.Certificate{
		Subject:               req.Subject,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		EmailAddresses:        req.EmailAddresses,
		URIs:                  req.URIs,
		KeyUsage:              usage,
		ExtKeyUsage:           extUsages,
		BasicConstraintsValid: true,
	}
	now := time.Now()
	der, err := ca.sign(tmpl, req.PublicKey, now.Add(-Backdate), now.Add(validity))
	if err != nil {
		return nil, err
	}
	return pemCert(der), nil
}

func covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if h != "" && !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func save(dir, certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pemCert(der), 0o644)
}

func load(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, nil, fmt.Errorf("%s or %s: no PEM data", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return cert, key, certPEM, nil
}

// writeAtomic writes a file so that a crash leaves the old or the new content, never a mix.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteFile writes a file atomically (temporary file, fsync, rename).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode)
}
