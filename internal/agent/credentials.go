package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/wire"
)

// Files under <state>/agent/, as docs/agent.md fixes them.
const (
	caFile          = "ca.crt"
	tokenFile       = "node.token"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
)

// Credentials are what joining gives an agent: the cluster CA, the node
// token its clients authenticate with, and its serving certificate.
type Credentials struct {
	// Dir is where they are kept (<state>/agent).
	Dir         string
	CAPEM       []byte
	Token       string
	ServingCert tls.Certificate
}

// JoinOption changes how Join works.
type JoinOption func(*joinOptions)

type joinOptions struct {
	caFile string
	log    *slog.Logger
}

// WithCAFile trusts the CA in path instead of fetching the server's (it
// must still match the token's hash, if the token has one).
func WithCAFile(path string) JoinOption { return func(o *joinOptions) { o.caFile = path } }

// WithJoinLogger logs what Join decides.
func WithJoinLogger(l *slog.Logger) JoinOption { return func(o *joinOptions) { o.log = l } }

// Join returns the node's credentials: those kept in <stateDir>/agent if
// they are for this cluster, node and addresses and the server still
// accepts the token; else new ones from joining with the join token.
func Join(ctx context.Context, serverURL, token, stateDir, nodeName string, addresses []string, opts ...JoinOption) (*Credentials, error) {
	o := &joinOptions{}
	for _, opt := range opts {
		opt(o)
	}
	log := joinLogger(o.log)
	serverURL = strings.TrimRight(serverURL, "/")
	jt, err := wire.ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(stateDir, "agent")
	if c, err := loadCredentials(dir); err == nil {
		reason, err := c.stale(ctx, serverURL, jt, nodeName, addresses)
		if err != nil {
			return nil, err
		}
		if reason == "" {
			log.Info("reusing credentials", "dir", dir)
			return c, nil
		}
		log.Info("joining again", "reason", reason)
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("stored credentials unusable, joining again", "err", err)
	}
	caPEM, err := trustedCA(ctx, serverURL, jt, o.caFile)
	if err != nil {
		return nil, err
	}
	client, err := clientFor(caPEM)
	if err != nil {
		return nil, err
	}
	resp, err := requestJoin(ctx, client, serverURL, jt.Secret, nodeName, addresses)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair([]byte(resp.ServingCert), []byte(resp.ServingKey))
	if err != nil {
		return nil, fmt.Errorf("serving certificate from the server: %w", err)
	}
	c := &Credentials{Dir: dir, CAPEM: caPEM, Token: resp.Token, ServingCert: cert}
	if err := c.save([]byte(resp.ServingCert), []byte(resp.ServingKey)); err != nil {
		return nil, err
	}
	log.Info("joined", "node", nodeName, "server", serverURL)
	return c, nil
}

// stale says why stored credentials cannot be reused ("" if they can).
// An unreachable server is an error, not a reason to join again.
func (c *Credentials) stale(ctx context.Context, serverURL string, jt wire.JoinToken, nodeName string, addresses []string) (string, error) {
	if h, err := wire.CAHash(c.CAPEM); err != nil || (jt.CAHash != "" && h != jt.CAHash) {
		return "the join token is for another CA", nil
	}
	leaf, err := c.leaf()
	if err != nil {
		return err.Error(), nil
	}
	if leaf.Subject.CommonName != "system:node:"+nodeName {
		return "the serving certificate is for " + leaf.Subject.CommonName, nil
	}
	if time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return "the serving certificate expires soon", nil
	}
	if !covers(leaf, addresses) {
		return "the node's addresses changed", nil
	}
	client, err := clientFor(c.CAPEM)
	if err != nil {
		return err.Error(), nil
	}
	// /version needs authentication here: a 401 means the token is gone;
	// any other answer means the server took it.
	_, err = get(ctx, client, serverURL+"/version", c.Token)
	if he := (*HTTPError)(nil); errors.As(err, &he) {
		if he.Code == 401 {
			return "the server no longer accepts the node token", nil
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check node token with %s: %w", serverURL, err)
	}
	return "", nil
}

// leaf is the serving certificate, parsed.
func (c *Credentials) leaf() (*x509.Certificate, error) {
	if c.ServingCert.Leaf != nil {
		return c.ServingCert.Leaf, nil
	}
	if len(c.ServingCert.Certificate) == 0 {
		return nil, errors.New("no serving certificate")
	}
	return x509.ParseCertificate(c.ServingCert.Certificate[0])
}

func covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

func loadCredentials(dir string) (*Credentials, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, caFile))
	if err != nil {
		return nil, err
	}
	token, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, servingCertFile), filepath.Join(dir, servingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	if strings.TrimSpace(string(token)) == "" {
		return nil, errors.New("empty node token")
	}
	return &Credentials{Dir: dir, CAPEM: caPEM, Token: strings.TrimSpace(string(token)), ServingCert: cert}, nil
}

// save writes the credentials, secrets readable by root only. The token
// goes last: a crash in between leaves a set that fails to load.
func (c *Credentials) save(certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("credentials dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{caFile, c.CAPEM}, {servingCertFile, certPEM}, {servingKeyFile, keyPEM}, {tokenFile, []byte(c.Token + "\n")}} {
		if err := pki.WriteFile(filepath.Join(c.Dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("save %s: %w", f.name, err)
		}
	}
	return nil
}

// RESTConfig is the agent's client configuration: the node token, the
// cluster CA, protobuf, and a rate a node's traffic needs (status, lease,
// its pods) without letting a bug flood the server.
func (c *Credentials) RESTConfig(serverURL, userAgent string) *rest.Config {
	return &rest.Config{
		Host:            strings.TrimRight(serverURL, "/"),
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAPEM},
		QPS:             50,
		Burst:           100,
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
		UserAgent: userAgent,
	}
}

// CAPool is the cluster CA as a pool, for verifying clients and servers.
func (c *Credentials) CAPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CAPEM) {
		return nil, errors.New("CA: no certificate in PEM")
	}
	return pool, nil
}
