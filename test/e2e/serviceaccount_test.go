//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/testserver"
)

// TestInClusterClient: a pod's client-go, with rest.InClusterConfig (the
// projected service account token, the cluster's CA, the kubernetes
// Service), is refused listing pods until a Role allows its service
// account, then lists them. `kubectl create token` gives a token that
// authenticates as the account.
func TestInClusterClient(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")
	c.RunIn(`apiVersion: v1
kind: ServiceAccount
metadata: {name: lister}
---
apiVersion: v1
kind: Pod
metadata: {name: lister}
spec:
  serviceAccountName: lister
  containers: [{name: app, image: registry.wharf.local/wharf/testapp:v1, args: [sleep]}]
`, "apply", "-f", "-")
	c.Eventually(`lister\s+1/1\s+Running`, "get", "pod", "lister")

	// What the volume holds: the namespace, the cluster's CA, a token.
	dir := "/var/run/secrets/kubernetes.io/serviceaccount/"
	if ns := c.Run("exec", "lister", "--", "cat", dir+"namespace"); ns != "default" {
		t.Errorf("namespace file %q, want default", ns)
	}
	ca, err := os.ReadFile(filepath.Join(c.stateDir, "server", "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Run("exec", "lister", "--", "cat", dir+"ca.crt"); got != string(ca) {
		t.Errorf("ca.crt in the pod:\n%s\nwant the cluster's:\n%s", got, ca)
	}

	listPods := func() (string, error) {
		out, err := c.Cmd("", "exec", "lister", "--", "/testapp", "list-pods").CombinedOutput()
		return string(out), err
	}
	out, err := listPods()
	if err == nil || !strings.Contains(out, `pods is forbidden: User "system:serviceaccount:default:lister" cannot list resource "pods" in API group "" in the namespace "default"`) {
		t.Fatalf("list-pods without a role: %v\n%s\nwant 403", err, out)
	}
	c.Run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
	c.Run("create", "rolebinding", "lister-reads-pods", "--role=pod-reader", "--serviceaccount=default:lister")
	testserver.WaitFor(t, "the pod to list pods", 30*time.Second, func() (bool, error) {
		out, err := listPods()
		return err == nil && strings.Contains(out, "lister Running"), fmt.Errorf("%v: %s", err, out)
	})
	// Only its own namespace.
	if out, err := c.Cmd("", "exec", "lister", "--", "/testapp", "list-pods", "--namespace=kube-system").CombinedOutput(); err == nil || !strings.Contains(string(out), "forbidden") {
		t.Errorf("list-pods in kube-system: %v\n%s\nwant 403", err, out)
	}

	// kubectl create token: a TokenRequest; the token authenticates as the account.
	token := strings.TrimSpace(c.Run("create", "token", "lister", "--duration=10m"))
	testserver.Contains(t, c.Run("auth", "whoami", "--token="+token), "system:serviceaccount:default:lister", "system:serviceaccounts:default")
	testserver.Contains(t, c.Run("auth", "can-i", "list", "pods", "--token="+token), "yes")
	if out, err := c.Cmd("", "auth", "can-i", "list", "secrets", "--token="+token).CombinedOutput(); err == nil || !strings.Contains(string(out), "no") {
		t.Errorf("can-i list secrets as lister: %v %s, want no", err, out)
	}
	// Deleting the account ends its tokens.
	c.Run("delete", "serviceaccount", "lister")
	testserver.WaitFor(t, "the token to be refused", 30*time.Second, func() (bool, error) {
		out, err := c.Cmd("", "auth", "whoami", "--token="+token).CombinedOutput()
		return err != nil && strings.Contains(string(out), "Unauthorized"), fmt.Errorf("%v: %s", err, out)
	})
}
