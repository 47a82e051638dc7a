//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// helmBin is where hack/install-deps.sh builds Helm 4.
const helmBin = "/usr/local/lib/wharf-tools/helm"

// TestHelmTest: `helm test` on a `wharf up` cluster, its test pod run by
// containerd. The `helm create` chart's images come from the cluster's
// registry (no public one is reachable): testapp serves on the chart's
// port, and the test pod's busybox wgets the service by name.
func TestHelmTest(t *testing.T) {
	if _, err := os.Stat(helmBin); err != nil {
		t.Skipf("helm 4 not installed at %s (hack/install-deps.sh builds it): %v", helmBin, err)
	}
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")
	dir, home := t.TempDir(), t.TempDir()
	helm := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(helmBin, append(args, "--kubeconfig", c.kubeconfig())...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home, "XDG_DATA_HOME=" + home}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	helm("create", "demo")
	test := filepath.Join(dir, "demo", "templates", "tests", "test-connection.yaml")
	data, err := os.ReadFile(test)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("image: busybox")) {
		t.Fatalf("%s runs no busybox:\n%s", test, data)
	}
	data = bytes.Replace(data, []byte("image: busybox"), []byte("image: registry.wharf.local/wharf/busybox:v1"), 1)
	if err := os.WriteFile(test, data, 0o644); err != nil {
		t.Fatal(err)
	}
	testserver.Contains(t, helm("install", "demo", "./demo", "--wait", "--timeout", "120s",
		"--set", "image.repository=registry.wharf.local/wharf/testapp", "--set", "image.tag=v1", "--set", "service.port=8080"),
		"STATUS: deployed")
	testserver.Contains(t, helm("test", "demo", "--timeout", "120s"), "TEST SUITE:     demo-test-connection", "Phase:          Succeeded")
	helm("uninstall", "demo", "--wait")
}
