//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/testserver"
)

// TestStatefulSetVolumes runs a 3-replica StatefulSet whose pods each
// write to their own claim of the default class (wharf.dev/local): a
// deleted pod comes back with the same name and its data; scaling down and
// up keeps the claims with whenScaled Retain and starts afresh with
// Delete; a volume full at its capacity gives the application ENOSPC.
func TestStatefulSetVolumes(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")

	sts := func(name, whenScaled string) string {
		return `apiVersion: v1
kind: Service
metadata: {name: ` + name + `}
spec: {clusterIP: None, selector: {app: ` + name + `}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ` + name + `}
spec:
  serviceName: ` + name + `
  replicas: 3
  selector: {matchLabels: {app: ` + name + `}}
  persistentVolumeClaimRetentionPolicy: {whenScaled: ` + whenScaled + `, whenDeleted: Delete}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: registry.wharf.local/wharf/busybox:v1
        # The first start writes the pod's name and the time; later starts keep it.
        command: [sh, -c, '[ -f /data/id ] || echo "$(hostname) $(date +%s%N)" > /data/id; cat /data/id; sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 8Mi}}}
`
	}
	id := func(pod string) string {
		t.Helper()
		return strings.TrimSpace(c.Run("exec", pod, "--", "cat", "/data/id"))
	}

	t.Run("retain", func(t *testing.T) {
		c.RunIn(sts("web", "Retain"), "apply", "-f", "-")
		c.Run("rollout", "status", "statefulset/web", "--timeout=180s")
		testserver.Contains(t, c.Run("get", "pvc"), "data-web-0", "data-web-1", "data-web-2", "Bound")
		before := map[string]string{}
		for _, p := range []string{"web-0", "web-1", "web-2"} {
			before[p] = id(p)
			if !strings.HasPrefix(before[p], p+" ") {
				t.Errorf("%s wrote %q", p, before[p])
			}
		}

		uid := c.Run("get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}")
		c.Run("delete", "pod", "web-1", "--wait=false")
		testserver.WaitFor(t, "web-1 back as a new pod", 120*time.Second, func() (bool, error) {
			out, err := c.Cmd("", "get", "pod", "web-1", "-o", "jsonpath={.metadata.uid} {.status.phase}").CombinedOutput()
			return err == nil && !strings.HasPrefix(string(out), uid) && strings.HasSuffix(string(out), "Running"), nil
		})
		c.Run("wait", "--for=condition=Ready", "pod/web-1", "--timeout=60s")
		if got := id("web-1"); got != before["web-1"] {
			t.Errorf("web-1 after its deletion has %q, had %q", got, before["web-1"])
		}

		c.Run("scale", "statefulset/web", "--replicas=1")
		c.Eventually(`^1$`, "get", "statefulset", "web", "-o", "jsonpath={.status.replicas}")
		testserver.Contains(t, c.Run("get", "pvc"), "data-web-2")
		c.Run("scale", "statefulset/web", "--replicas=3")
		c.Run("rollout", "status", "statefulset/web", "--timeout=180s")
		if got := id("web-2"); got != before["web-2"] {
			t.Errorf("web-2 after scaling down and up has %q, had %q (whenScaled Retain)", got, before["web-2"])
		}

		// The volume has 8 MiB: writing 16 fails inside the pod.
		out, _ := c.Cmd("", "exec", "web-0", "--", "dd", "if=/dev/zero", "of=/data/fill", "bs=1M", "count=16").CombinedOutput()
		testserver.Contains(t, string(out), "No space left on device")
	})

	t.Run("delete-when-scaled", func(t *testing.T) {
		c.RunIn(sts("db", "Delete"), "apply", "-f", "-")
		c.Run("rollout", "status", "statefulset/db", "--timeout=180s")
		before := id("db-2")
		c.Run("scale", "statefulset/db", "--replicas=2")
		testserver.WaitFor(t, "the claim of db-2 to go", 120*time.Second, func() (bool, error) {
			out, _ := c.Cmd("", "get", "pvc", "data-db-2", "-o", "name").CombinedOutput()
			return strings.Contains(string(out), "NotFound"), nil
		})
		c.Run("scale", "statefulset/db", "--replicas=3")
		c.Run("rollout", "status", "statefulset/db", "--timeout=180s")
		if got := id("db-2"); got == before {
			t.Errorf("db-2 kept its data %q though whenScaled is Delete", got)
		}
		c.Run("delete", "statefulset", "db")
		testserver.WaitFor(t, "the claims and volumes of db to go (whenDeleted Delete, reclaim Delete)", 120*time.Second, func() (bool, error) {
			pvc, _ := c.Cmd("", "get", "pvc", "-o", "name").CombinedOutput()
			pv, _ := c.Cmd("", "get", "pv", "-o", "jsonpath={.items[*].spec.claimRef.name}").CombinedOutput()
			return !strings.Contains(string(pvc), "data-db-") && !strings.Contains(string(pv), "data-db-"), nil
		})
	})
}
