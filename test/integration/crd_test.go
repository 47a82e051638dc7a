//go:build integration

package integration

import (
	"os"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

const crontabObject = `apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: "0 3 * * *"
  replicas: 2
  image: registry.example.com/job
`

// TestKubectlCustomResources runs a CustomResourceDefinition session with
// every installed kubectl release: create, established, explain, objects
// with their printer columns and short name, scale, and deleting the
// definition taking its objects and resource type with it.
func TestKubectlCustomResources(t *testing.T) {
	def, err := os.ReadFile("../../internal/crd/testdata/crontab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	for _, minor := range []string{"27", "28", "29", "30", "31", "32", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			testserver.Contains(t, k.RunIn(string(def), "create", "-f", "-"), "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created")
			t.Cleanup(func() {
				k.Cmd("", "delete", "crd", "crontabs.stable.example.com", "--ignore-not-found", "--wait").Run()
			})
			k.Run("wait", "--for", "condition=established", "--timeout=30s", "crd/crontabs.stable.example.com")
			testserver.Contains(t, k.Eventually("cronSpec", "explain", "crontab.spec"), "The cron schedule")
			testserver.Contains(t, k.RunIn(crontabObject, "apply", "-f", "-"), "crontab.stable.example.com/nightly created")
			out := k.Run("get", "crontabs")
			testserver.Contains(t, out, "NAME", "SPEC", "REPLICAS", "LAST-RUN", "nightly", "0 3 * * *")
			if strings.Contains(out, "IMAGE") {
				t.Errorf("a priority-1 column without -o wide:\n%s", out)
			}
			testserver.Contains(t, k.Run("get", "ct", "-o", "wide"), "IMAGE", "registry.example.com/job")
			testserver.Contains(t, k.Run("scale", "crontab", "nightly", "--replicas", "4"), "scaled")
			testserver.Contains(t, k.Run("get", "crontab", "nightly", "-o", "jsonpath={.spec.replicas}"), "4")
			// An object its schema refuses, with kubectl's message.
			bad, err := k.Cmd(strings.Replace(crontabObject, "0 3 * * *", "every day", 1), "apply", "-f", "-").CombinedOutput()
			if err == nil {
				t.Errorf("apply of an invalid cronSpec succeeded:\n%s", bad)
			}
			testserver.Contains(t, string(bad), "spec.cronSpec")

			testserver.Contains(t, k.Run("delete", "crd", "crontabs.stable.example.com"), "deleted")
			// kubectl answers from its discovery cache until a 404 makes it
			// ask again: either message says the type is gone.
			k.Eventually(`doesn't have a resource type "crontabs"|could not find the requested resource`, "get", "crontabs")
		})
	}
}

// TestKubectlAuth asks the server what users may do, as kubectl auth can-i
// does, and acts as other users with --as.
func TestKubectlAuth(t *testing.T) {
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	for _, minor := range []string{"27", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			testserver.Contains(t, k.Run("auth", "can-i", "--list"), "*.*", "[*]")
			testserver.Contains(t, k.Run("auth", "can-i", "create", "deployments"), "yes")
			no, _ := k.Cmd("", "auth", "can-i", "get", "pods", "--as", "viewer").CombinedOutput()
			testserver.Contains(t, string(no), "no")
			k.Run("create", "rolebinding", "viewer-"+minor, "--clusterrole", "view", "--user", "viewer")
			t.Cleanup(func() { k.Cmd("", "delete", "rolebinding", "viewer-"+minor, "--ignore-not-found").Run() })
			k.Eventually("yes", "auth", "can-i", "get", "pods", "--as", "viewer")
			list := k.Run("auth", "can-i", "--list", "--as", "viewer")
			testserver.Contains(t, list, "pods", "[get list watch]")
			denied, err := k.Cmd("", "get", "secrets", "--as", "viewer").CombinedOutput()
			if err == nil {
				t.Errorf("a viewer read secrets:\n%s", denied)
			}
			testserver.Contains(t, string(denied), `User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"`)
			if minor >= "28" { // SelfSubjectReview is v1 since 1.28
				testserver.Contains(t, k.Run("auth", "whoami", "--as", "viewer", "--as-group", "team"), "viewer", "team")
			}
			k.Run("delete", "rolebinding", "viewer-"+minor)
		})
	}
}
