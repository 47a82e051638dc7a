package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdTLS names the PEM files a server presents to, and checks, an
// external etcd with (kube-apiserver's --etcd-cafile, --etcd-certfile,
// --etcd-keyfile). Empty CAFile trusts the system roots.
type EtcdTLS struct {
	CAFile, CertFile, KeyFile string
}

func (t EtcdTLS) set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// config loads the files; each error names the file and the flag.
func (t EtcdTLS) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cafile: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cafile %s: no PEM certificate in it", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("--etcd-certfile and --etcd-keyfile go together")
	}
	if t.CertFile != "" {
		for flag, f := range map[string]string{"--etcd-certfile": t.CertFile, "--etcd-keyfile": t.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("%s: %w", flag, err)
			}
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s, key %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// etcdDialTimeout bounds how long a server waits for an external etcd at
// start: an unreachable or misconfigured etcd is an error, not a hang.
const etcdDialTimeout = 10 * time.Second

// dialEtcd connects to an external etcd and checks it answers. The etcd
// client connects lazily and retries forever, so a wrong CA or a dead
// endpoint would only show as a hang: one read within etcdDialTimeout
// proves the connection, and when it fails each endpoint is probed to
// say why (refused, TLS verification, ...).
func dialEtcd(ctx context.Context, endpoints []string, t EtcdTLS) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: etcdDialTimeout, Context: ctx}
	secure := false
	for _, e := range endpoints {
		u, err := parseEndpoint(e)
		if err != nil {
			return nil, err
		}
		secure = secure || u.Scheme == "https"
		if u.Scheme == "http" && t.set() {
			return nil, fmt.Errorf("--etcd-servers: %s is plain http but etcd TLS files are given; use https://", e)
		}
	}
	if secure {
		tc, err := t.config()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(endpoints, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, etcdDialTimeout)
	defer cancel()
	if _, err := c.Get(pctx, "health-check", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s does not answer within %s: %w%s", strings.Join(endpoints, ","), etcdDialTimeout, err, probeEtcd(ctx, endpoints, cfg.TLS))
	}
	return c, nil
}

// parseEndpoint reads an etcd endpoint: a URL, or host:port for plain
// http as the etcd client takes it.
func parseEndpoint(e string) (*url.URL, error) {
	s := e
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--etcd-servers: %q is not an http:// or https:// URL", e)
	}
	return u, nil
}

// probeEtcd connects to each endpoint once and returns what went wrong,
// as "; <endpoint>: <reason>" per endpoint, for the error of dialEtcd.
func probeEtcd(ctx context.Context, endpoints []string, tc *tls.Config) string {
	var b strings.Builder
	for _, e := range endpoints {
		u, _ := parseEndpoint(e)
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil && u.Scheme == "https" {
			c := tc.Clone()
			c.ServerName = u.Hostname()
			tconn := tls.Client(conn, c)
			tconn.SetDeadline(time.Now().Add(2 * time.Second))
			err = tconn.HandshakeContext(ctx)
			conn = tconn
		}
		if conn != nil {
			conn.Close()
		}
		if err != nil {
			fmt.Fprintf(&b, "; %s: %v", e, err)
		}
	}
	return b.String()
}
