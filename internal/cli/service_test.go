package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	wharfclient "wharf.dev/wharf/internal/client/wharf"
	"wharf.dev/wharf/internal/testserver"
)

// serviceEnv is a service-mode control plane without a cluster
// controller: tests play the controller's part through the client.
type serviceEnv struct {
	t *testing.T
	s *testserver.Server
	c *wharfclient.Client
}

func newServiceEnv(t *testing.T) *serviceEnv {
	t.Helper()
	s := testserver.Start(t, testserver.Service)
	c, err := wharfclient.NewForConfig(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	return &serviceEnv{t: t, s: s, c: c}
}

// run runs a wharf command against the service.
func (e *serviceEnv) run(args ...string) (string, error) {
	e.t.Helper()
	return runCLI(e.t, append(args, "--service-kubeconfig", e.s.AdminKubeconfig)...)
}

// must runs a wharf command that must succeed.
func (e *serviceEnv) must(args ...string) string {
	e.t.Helper()
	out, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("wharf %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fails runs a wharf command that must fail with each of want in its error.
func (e *serviceEnv) fails(args []string, want ...string) {
	e.t.Helper()
	_, err := e.run(args...)
	if err == nil {
		e.t.Fatalf("wharf %s succeeded, want an error", strings.Join(args, " "))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			e.t.Errorf("wharf %s: error lacks %q:\n%v", strings.Join(args, " "), w, err)
		}
	}
}

// setStatus changes a cluster's status as the controller would.
func (e *serviceEnv) setStatus(name string, change func(*wharfv1.ClusterStatus)) {
	e.t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := e.c.Clusters("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(&c.Status)
		_, err = e.c.Clusters("default").UpdateStatus(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestNoService(t *testing.T) {
	t.Setenv(serviceKubeconfigEnv, filepath.Join(t.TempDir(), "missing.kubeconfig"))
	_, err := runCLI(t, "cluster", "list")
	if err == nil || !strings.Contains(err.Error(), "no service: run `wharf service start` or pass --service-kubeconfig") {
		t.Errorf("got %v", err)
	}
}

// TestServiceStartStatusStop runs the real binary: start puts the service
// in the background and returns once it is ready.
func TestServiceStartStatusStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wharf binary")
	}
	bin := filepath.Join(t.TempDir(), "wharf")
	build := exec.Command("go", "build", "-o", bin, "wharf.dev/wharf/cmd/wharf")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	wharf := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	state := []string{"--state-dir", dir}
	out, err := wharf(append([]string{"service", "start", "--listen", "127.0.0.1:0", "--disable-cluster-controller"}, state...)...)
	t.Cleanup(func() { wharf(append([]string{"service", "stop"}, state...)...) })
	if err != nil {
		t.Fatalf("service start: %v\n%s", err, out)
	}
	testserver.Contains(t, out, "wharf service started (pid ", "service ready at https://127.0.0.1:", "export "+serviceKubeconfigEnv+"="+dir+"/admin.kubeconfig")

	out, err = wharf(append([]string{"service", "status"}, state...)...)
	if err != nil {
		t.Fatalf("service status: %v\n%s", err, out)
	}
	testserver.Contains(t, out, "health:     ok", "url:        https://127.0.0.1:")
	if out, err := wharf("cluster", "list", "--service-kubeconfig", filepath.Join(dir, "admin.kubeconfig")); err != nil {
		t.Fatalf("cluster list: %v\n%s", err, out)
	}
	out, _ = wharf(append([]string{"service", "start"}, state...)...)
	testserver.Contains(t, out, "already running")

	out, err = wharf(append([]string{"service", "stop"}, state...)...)
	if err != nil {
		t.Fatalf("service stop: %v\n%s", err, out)
	}
	testserver.Contains(t, out, "wharf service stopped")
	if out, err := wharf(append([]string{"service", "status"}, state...)...); err == nil || !strings.Contains(out, "not running") {
		t.Errorf("status of a stopped service: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "service.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}
