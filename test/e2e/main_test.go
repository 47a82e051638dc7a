//go:build e2e

// Package e2e runs a whole cluster on this machine with `wharf up` (root,
// Debian's containerd, runc and CNI plugins) and drives it with the real
// kubectl, as a user would. Run with: go test -tags e2e ./test/e2e/
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/testserver"
)

var (
	wharfBin string
	repoRoot string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root")
		os.Exit(0)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "wharf-e2e-bin")
	if err != nil {
		panic(err)
	}
	wharfBin = filepath.Join(dir, "wharf")
	for _, c := range [][]string{
		{"go", "build", "-o", wharfBin, "./cmd/wharf"},
		{"env", "CGO_ENABLED=0", "go", "build", "-o", filepath.Join(dir, "wharf-cni"), "./cmd/wharf-cni"},
		{wharfBin, "image", "build", "--out", filepath.Join(dir, "images")},
	} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "%v: %v\n%s", c, err, out)
			os.Exit(1)
		}
	}
	purgeStale()
	egress, err := startEgressCounter()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: egress counter: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := egress.check(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: nothing may leave the machine by accident: %v\n", err)
		code = 1
	} else {
		fmt.Println("e2e: no packet of the tests left through", egress.iface)
	}
	egress.remove()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one `wharf up` for the duration of a test.
type cluster struct {
	t        *testing.T
	stateDir string
	// resolvConf is the node's resolv.conf (--resolv-conf): "" gives pods
	// and the node's DNS no resolver, never the machine's.
	resolvConf string
	client     kubernetes.Interface
	*testserver.KubectlRunner
}

// upCluster runs `wharf up` in a fresh state dir and purges it when the test ends.
func upCluster(t *testing.T) *cluster {
	t.Helper()
	return upClusterResolving(t, "")
}

// upClusterResolving is upCluster with the node's resolv.conf.
func upClusterResolving(t *testing.T, resolvConf string) *cluster {
	t.Helper()
	c := &cluster{t: t, stateDir: testDir(t, "wu") + "/state", resolvConf: resolvConf}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"log/server.log", "log/agent.log"} {
				t.Logf("--- %s (tail)\n%s", f, tailFile(filepath.Join(c.stateDir, f), 40))
			}
		}
		c.wharf("down", "--state-dir", c.stateDir, "--purge")
	})
	c.up()
	c.KubectlRunner = testserver.NewKubectl(t, "33", c.kubeconfig())
	c.KubectlRunner.Dir = repoRoot
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	c.client = kubernetes.NewForConfigOrDie(cfg)
	return c
}

// up runs `wharf up` (again): it starts whatever is not running.
func (c *cluster) up() {
	c.t.Helper()
	// Loopback only: the node is reached at 127.0.0.1 by the server; pods
	// get no resolver (never the machine's).
	out, err := c.wharf("up", "--state-dir", c.stateDir, "--node-ip", "127.0.0.1", "--node-name", "e2e", "--resolv-conf="+c.resolvConf)
	if err != nil {
		c.t.Fatalf("wharf up: %v\n%s", err, out)
	}
}

// cgroupRoot is the cgroup `wharf up` chose for the cluster's node.
func (c *cluster) cgroupRoot() string {
	c.t.Helper()
	var chosen struct{ CgroupRoot string }
	data, err := os.ReadFile(filepath.Join(c.stateDir, "cluster.json"))
	if err == nil {
		err = json.Unmarshal(data, &chosen)
	}
	if err != nil || chosen.CgroupRoot == "" {
		c.t.Fatalf("cluster.json: %v %s", err, data)
	}
	return chosen.CgroupRoot
}

func (c *cluster) kubeconfig() string { return filepath.Join(c.stateDir, "server", "admin.kubeconfig") }

func (c *cluster) wharf(args ...string) (string, error) {
	cmd := exec.Command(wharfBin, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var _ = bytes.NewReader
