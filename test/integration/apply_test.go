//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// TestKubectlServerSideApply runs a server-side apply session with every
// installed kubectl release: create, a conflict between two field
// managers reported as kubectl prints it, --force-conflicts, the managers
// listed, and an object applied client-side moving to server-side apply
// (a key dropped from the manifest is removed).
func TestKubectlServerSideApply(t *testing.T) {
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	for _, minor := range []string{"27", "28", "29", "30", "31", "32", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			name := "ssa-" + minor
			cm := func(data string) string {
				return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n%s", name, data)
			}
			testserver.Contains(t, k.RunIn(cm("  a: \"1\"\n  b: \"1\"\n"), "apply", "--server-side", "-f", "-"), "configmap/"+name+" serverside-applied")
			testserver.Contains(t, k.RunIn(cm("  a: \"1\"\n  b: \"1\"\n"), "apply", "--server-side", "-f", "-"), "configmap/"+name+" serverside-applied")

			out, err := k.Cmd(cm("  a: \"2\"\n"), "apply", "--server-side", "--field-manager", "other", "-f", "-").CombinedOutput()
			if err == nil {
				t.Fatalf("conflicting apply succeeded:\n%s", out)
			}
			testserver.Contains(t, string(out), "Apply failed with 1 conflict", `conflict with "kubectl"`, ".data.a", "--force-conflicts")

			k.RunIn(cm("  a: \"2\"\n"), "apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", "-")
			got := k.Run("get", "configmap", name, "-o", "yaml", "--show-managed-fields")
			testserver.Contains(t, got, `a: "2"`, `b: "1"`, "manager: other", "manager: kubectl", "operation: Apply")

			// Client-side apply first, then server-side with a key dropped.
			csa := name + "-csa"
			manifest := func(data string) string { return strings.Replace(cm(data), "name: "+name, "name: "+csa, 1) }
			testserver.Contains(t, k.RunIn(manifest("  a: \"1\"\n  b: \"1\"\n"), "apply", "-f", "-"), "configmap/"+csa+" created")
			k.RunIn(manifest("  a: \"1\"\n"), "apply", "--server-side", "-f", "-")
			if got := k.Run("get", "configmap", csa, "-o", "jsonpath={.data}"); strings.Contains(got, `"b"`) {
				t.Errorf("key b kept after the move to server-side apply dropped it: %s", got)
			}
			testserver.Contains(t, k.Run("delete", "configmap", name, csa), "deleted")
		})
	}
}
