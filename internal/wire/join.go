package wire

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Joining, as docs/agent.md fixes it: an agent checks the CA from CAPath
// against the hash in its join token, then POSTs a JoinRequest to JoinPath
// with the token's secret and gets back a JoinResponse.
const (
	// CAPath serves the cluster CA certificate (PEM), without
	// authentication.
	CAPath = "/wharf/v1/ca"
	// JoinPath trades the join secret for a node's credentials.
	JoinPath = "/wharf/v1/join"
)

// JoinRequest is what an agent POSTs to JoinPath.
type JoinRequest struct {
	NodeName  string   `json:"nodeName"`
	Addresses []string `json:"addresses"`
}

// JoinResponse is the server's answer to a JoinRequest: the node's token
// (see NodeToken) and its serving certificate and key (PEM).
type JoinResponse struct {
	Token       string `json:"token"`
	ServingCert string `json:"servingCert"`
	ServingKey  string `json:"servingKey"`
}

// joinTokenKind starts a join token; a new format gets a new kind.
const joinTokenKind = "wharf1"

// JoinToken is what an agent joins with: "wharf1.<CAHash>.<Secret>". With
// a CA file given otherwise, a bare secret will do (CAHash empty).
type JoinToken struct {
	CAHash string // CertHash of the cluster CA; empty for a bare secret
	Secret string
}

// String is the token as agents are given it.
func (t JoinToken) String() string {
	if t.CAHash == "" {
		return t.Secret
	}
	return joinTokenKind + "." + t.CAHash + "." + t.Secret
}

var errJoinTokenFormat = errors.New("join token: want " + joinTokenKind + ".<sha256 hex of the CA>.<secret>")

// ParseJoinToken parses a join token or a bare secret; surrounding space
// (a file's newline) is ignored and the hash may be in upper case.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	switch {
	case len(parts) == 3 && parts[0] == joinTokenKind:
		h := strings.ToLower(parts[1])
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size || parts[2] == "" {
			return JoinToken{}, errJoinTokenFormat
		}
		return JoinToken{CAHash: h, Secret: parts[2]}, nil
	case len(parts) == 1 && s != "":
		return JoinToken{Secret: s}, nil
	}
	return JoinToken{}, errJoinTokenFormat
}

// CertHash is the hash a join token carries for a CA certificate: the
// SHA-256 of its DER, in lowercase hex.
func CertHash(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// CAHash is CertHash of a PEM CA certificate, which must parse.
func CAHash(caPEM []byte) (string, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("CA: no PEM certificate")
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return "", fmt.Errorf("CA: %w", err)
	}
	return CertHash(b.Bytes), nil
}
