package ingress

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// secret is what routing uses of a Secret: its type and, for a TLS one,
// its certificate parsed once (per resourceVersion) or why it cannot be
// used. Nothing else of a Secret is kept: other Secrets' data never
// stays in the agent's memory.
type secret struct {
	rv    string
	isTLS bool
	cert  *tls.Certificate // nil: unusable, err says why
	err   string
}

func reduceSecret(s *corev1.Secret) *secret {
	out := &secret{rv: s.ResourceVersion, isTLS: s.Type == corev1.SecretTypeTLS}
	if out.isTLS {
		out.cert, out.err = parseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	}
	return out
}

// parseKeyPair is tls.X509KeyPair with errors a user can act on (and
// that are not matched by string): the problems name the part at fault.
func parseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, string) {
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, "no PEM certificate in " + corev1.TLSCertKey
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, "invalid certificate in " + corev1.TLSCertKey + ": " + err.Error()
	}
	var keyDER []byte
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY") {
			keyDER = b.Bytes
			break
		}
	}
	if keyDER == nil {
		return nil, "no PEM private key in " + corev1.TLSPrivateKeyKey
	}
	key, ok := parsePrivateKey(keyDER)
	if !ok {
		return nil, "invalid private key in " + corev1.TLSPrivateKeyKey
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, "certificate and key do not match"
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, ""
}

func parsePrivateKey(der []byte) (crypto.Signer, bool) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		return s, ok
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return (*rsa.PrivateKey)(k), true
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return (*ecdsa.PrivateKey)(k), true
	}
	return nil, false
}
