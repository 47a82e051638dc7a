//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/testserver"
)

// debianEtcd is Debian's etcd-server (hack/install-deps.sh installs it).
const debianEtcd = "/usr/bin/etcd"

// tlsEtcd is an etcd child process serving clients over TLS with client
// certificates required.
type tlsEtcd struct {
	endpoint string
	// ca, cert, key: the files a client needs (--etcd-cafile ...).
	ca, cert, key string
}

// flags are the server flags that use this etcd.
func (e *tlsEtcd) flags() []string {
	return []string{"--etcd-servers", e.endpoint, "--etcd-cafile", e.ca, "--etcd-certfile", e.cert, "--etcd-keyfile", e.key}
}

// startTLSEtcd runs Debian's etcd on free loopback ports with certificates
// made here by internal/pki, and kills it when the test ends.
func startTLSEtcd(t *testing.T) *tlsEtcd {
	t.Helper()
	if _, err := os.Stat(debianEtcd); err != nil {
		t.Skipf("SKIPPED: %s is missing (Debian package etcd-server; hack/install-deps.sh installs it): %v", debianEtcd, err)
	}
	dir := t.TempDir()
	ca, err := pki.EnsureCA(filepath.Join(dir, "pki"), "etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServing(filepath.Join(dir, "pki"), "etcd", []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueClient(filepath.Join(dir, "pki"), "wharf-etcd-client", "wharf", nil)
	if err != nil {
		t.Fatal(err)
	}
	client, peer := "https://"+freePort(t), "http://"+freePort(t)
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianEtcd,
		"--name", "ext", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "ext="+peer,
		"--cert-file", filepath.Join(dir, "pki", "etcd.crt"), "--key-file", filepath.Join(dir, "pki", "etcd.key"),
		"--trusted-ca-file", filepath.Join(dir, "pki", "ca.crt"), "--client-cert-auth",
		"--unsafe-no-fsync", "--logger", "zap")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("etcd log (tail):\n%s", tail(string(out), 3000))
		}
	})
	e := &tlsEtcd{endpoint: client, ca: filepath.Join(dir, "pki", "ca.crt"), cert: cert, key: key}
	c := e.client(t)
	if err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "etcd to answer", 30*time.Second, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Get(ctx, "probe")
		return err == nil, err
	})
	return e
}

// client is an etcd client of e, closed when the test ends.
func (e *tlsEtcd) client(t *testing.T) *clientv3.Client {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(e.cert, e.key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(e.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := clientv3.New(clientv3.Config{
		Endpoints: []string{e.endpoint}, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// runServerFails runs `wharf server` expecting it to exit with an error
// and returns its output.
func runServerFails(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	all := append([]string{"server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, args...)
	cmd := exec.CommandContext(ctx, wharfBin, all...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("wharf server %v: want an error exit, got %v (ctx %v); output:\n%s", args, err, ctx.Err(), out)
	}
	return string(out)
}

// TestExternalEtcdTLS runs two servers on Debian's etcd over TLS with
// client certificates: each sees the other's objects; bad TLS files, a
// wrong CA and a dead endpoint fail fast with the reason.
func TestExternalEtcdTLS(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	e := startTLSEtcd(t)

	a := startServer(t, t.TempDir()+"/a", "127.0.0.1:0", e.flags()...)
	b := startServer(t, t.TempDir()+"/b", "127.0.0.1:0", e.flags()...)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "through-a"}, Data: map[string]string{"k": "v"}}
	if _, err := a.client().CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "server b to see a's config map", 10*time.Second, func() (bool, error) {
		got, err := b.client().CoreV1().ConfigMaps("default").Get(ctx, "through-a", metav1.GetOptions{})
		return err == nil && got.Data["k"] == "v", err
	})
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "through-b"}}
	if _, err := b.client().CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client().CoreV1().ConfigMaps("default").Get(ctx, "through-b", metav1.GetOptions{}); err != nil {
		t.Fatalf("server a reading b's config map: %v", err)
	}

	otherCA, err := pki.EnsureCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	wrongCA := filepath.Join(t.TempDir(), "wrong-ca.crt")
	if err := os.WriteFile(wrongCA, otherCA.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	dead := "https://" + freePort(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"wrong CA", []string{"--etcd-servers", e.endpoint, "--etcd-cafile", wrongCA, "--etcd-certfile", e.cert, "--etcd-keyfile", e.key},
			[]string{e.endpoint, "certificate signed by unknown authority"}},
		{"missing CA file", []string{"--etcd-servers", e.endpoint, "--etcd-cafile", "/nonexistent/ca.crt", "--etcd-certfile", e.cert, "--etcd-keyfile", e.key},
			[]string{"--etcd-cafile", "/nonexistent/ca.crt", "no such file"}},
		{"key without certificate", []string{"--etcd-servers", e.endpoint, "--etcd-cafile", e.ca, "--etcd-keyfile", e.key},
			[]string{"--etcd-certfile and --etcd-keyfile"}},
		{"no client certificate", []string{"--etcd-servers", e.endpoint, "--etcd-cafile", e.ca},
			[]string{e.endpoint, "does not answer"}},
		{"dead endpoint", []string{"--etcd-servers", dead, "--etcd-cafile", e.ca, "--etcd-certfile", e.cert, "--etcd-keyfile", e.key},
			[]string{dead, "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runServerFails(t, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
