//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// TestDaemonSet runs a DaemonSet on a real node: its pod runs in
// containerd, and a template change rolls it (the old pod replaced by one
// of the new revision, which sees the new environment).
func TestDaemonSet(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")

	c.RunIn(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: c
        image: registry.wharf.local/wharf/busybox:v1
        args: [sleep, "3600"]
        env: [{name: VERSION, value: "1"}]
`, "apply", "-f", "-")
	testserver.Contains(t, c.Run("rollout", "status", "ds/agent", "--timeout=120s"), `daemon set "agent" successfully rolled out`)
	jsonpath := `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.labels.pod-template-generation}{"\n"}{end}`
	before := strings.Fields(c.Run("get", "pods", "-l", "app=agent", "-o", jsonpath))
	if len(before) != 4 || before[1] != "e2e" || before[2] != "Running" || before[3] != "1" {
		t.Fatalf("daemon pods (name node phase generation): %v, want one Running on e2e of generation 1", before)
	}
	testserver.Contains(t, c.Run("exec", "ds/agent", "--", "env"), "VERSION=1")

	testserver.Contains(t, c.Run("set", "env", "ds/agent", "VERSION=2"), "daemonset.apps/agent env updated")
	testserver.Contains(t, c.Run("rollout", "status", "ds/agent", "--timeout=120s"), `daemon set "agent" successfully rolled out`)
	c.Eventually(`^\S+ e2e Running 2\n$`, "get", "pods", "-l", "app=agent", "-o", jsonpath)
	after := strings.Fields(c.Run("get", "pods", "-l", "app=agent", "-o", jsonpath))
	if after[0] == before[0] {
		t.Errorf("pod %s not replaced by the update", before[0])
	}
	testserver.Contains(t, c.Run("exec", "ds/agent", "--", "env"), "VERSION=2")
	testserver.Contains(t, c.Run("rollout", "history", "ds/agent"), "1 ", "2 ")
	c.Eventually(`SuccessfulDelete\s+daemonset/agent\s+Deleted pod: `+before[0], "get", "events", "--field-selector", "involvedObject.name=agent")
}
