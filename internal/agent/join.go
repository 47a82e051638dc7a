package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/join"
)

// tokenKind starts a join token, as docs/agent.md fixes it.
const tokenKind = "wharf1"

// JoinToken is a parsed join token: "wharf1.<sha256 of the CA certificate,
// hex>.<secret>". With a CA file, a bare secret will do.
type JoinToken struct {
	CAHash string // lowercase hex; empty for a bare secret
	Secret string
}

// ParseJoinToken parses a join token.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	switch {
	case len(parts) == 3 && parts[0] == tokenKind:
		h := strings.ToLower(parts[1])
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size || parts[2] == "" {
			return JoinToken{}, errors.New("join token: want wharf1.<sha256 hex of the CA>.<secret>")
		}
		return JoinToken{CAHash: h, Secret: parts[2]}, nil
	case len(parts) == 1 && s != "":
		return JoinToken{Secret: s}, nil
	}
	return JoinToken{}, errors.New("join token: want wharf1.<sha256 hex of the CA>.<secret>")
}

// HTTPError is a refusal from the server, with the message of its Status.
type HTTPError struct {
	Code    int
	Message string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Message) }

// ErrCAMismatch is returned when the server's CA is not the one the join
// token names: the server is not the cluster's, or the token is stale.
var ErrCAMismatch = errors.New("the server's CA does not match the join token's hash")

// caHash is the hash a join token carries for a PEM CA certificate.
func caHash(caPEM []byte) (string, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("CA: no PEM certificate")
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return "", fmt.Errorf("CA: %w", err)
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// trustedCA returns the cluster CA: from caFile if set, else fetched from
// the server without verifying it, then checked against the token's hash.
// Fetching unverified is safe because of the check: a man in the middle
// cannot make a CA with the token's hash.
func trustedCA(ctx context.Context, serverURL string, jt JoinToken, caFile string) ([]byte, error) {
	var caPEM []byte
	if caFile != "" {
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		caPEM = data
	} else {
		if jt.CAHash == "" {
			return nil, errors.New("a bare join secret needs --ca-file: nothing else says which CA to trust")
		}
		insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		}}
		data, err := get(ctx, insecure, serverURL+join.CAPath, "")
		if err != nil {
			return nil, fmt.Errorf("fetch CA: %w", err)
		}
		caPEM = data
	}
	h, err := caHash(caPEM)
	if err != nil {
		return nil, err
	}
	if jt.CAHash != "" && h != jt.CAHash {
		return nil, fmt.Errorf("%w (token sha256:%s, server sha256:%s)", ErrCAMismatch, jt.CAHash, h)
	}
	return caPEM, nil
}

// clientFor returns an HTTP client that trusts only the cluster CA.
func clientFor(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA: no certificate in PEM")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

// requestJoin trades the join secret for the node's credentials.
func requestJoin(ctx context.Context, client *http.Client, serverURL, secret, nodeName string, addresses []string) (*join.Response, error) {
	body, _ := json.Marshal(join.Request{NodeName: nodeName, Addresses: addresses})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+join.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("join as node %q: %w", nodeName, statusError(resp.StatusCode, data))
	}
	var out join.Response
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" || out.ServingCert == "" || out.ServingKey == "" {
		return nil, fmt.Errorf("join as node %q: malformed answer (%v)", nodeName, err)
	}
	return &out, nil
}

// get reads a URL, with a bearer token if one is given, turning a refusal
// into an HTTPError.
func get(ctx context.Context, client *http.Client, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, data)
	}
	return data, nil
}

func statusError(code int, body []byte) *HTTPError {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return &HTTPError{Code: code, Message: st.Message}
	}
	return &HTTPError{Code: code, Message: strings.TrimSpace(string(body))}
}

// joinLogger is the logger of Join's options, or a silent one.
func joinLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
