package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/wire"
)

// HTTPError is a refusal from the server, with the message of its Status.
type HTTPError struct {
	Code    int
	Message string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Message) }

// ErrCAMismatch is returned when the server's CA is not the one the join
// token names: the server is not the cluster's, or the token is stale.
var ErrCAMismatch = errors.New("the server's CA does not match the join token's hash")

// trustedCA returns the cluster CA: from caFile if set, else fetched from
// the server without verifying it, then checked against the token's hash.
// Fetching unverified is safe because of the check: a man in the middle
// cannot make a CA with the token's hash.
func trustedCA(ctx context.Context, serverURL string, jt wire.JoinToken, caFile string) ([]byte, error) {
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
		data, err := get(ctx, insecure, serverURL+wire.CAPath, "")
		if err != nil {
			return nil, fmt.Errorf("fetch CA: %w", err)
		}
		caPEM = data
	}
	h, err := wire.CAHash(caPEM)
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
func requestJoin(ctx context.Context, client *http.Client, serverURL, secret, nodeName string, addresses []string) (*wire.JoinResponse, error) {
	body, _ := json.Marshal(wire.JoinRequest{NodeName: nodeName, Addresses: addresses})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+wire.JoinPath, bytes.NewReader(body))
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
	var out wire.JoinResponse
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
