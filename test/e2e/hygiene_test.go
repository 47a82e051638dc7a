//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// TestContainerHygiene runs, on a real node, what keeps one pod from
// hurting the node: a memory-backed emptyDir is a tmpfs of its size limit
// (the application gets ENOSPC), and a pod writing beyond its
// ephemeral-storage limit is evicted.
func TestContainerHygiene(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")

	t.Run("memory-emptydir", func(t *testing.T) {
		c.RunIn(`apiVersion: v1
kind: Pod
metadata: {name: shm}
spec:
  restartPolicy: Never
  volumes: [{name: shm, emptyDir: {medium: Memory, sizeLimit: 1Mi}}]
  containers:
  - name: app
    image: registry.wharf.local/wharf/busybox:v1
    volumeMounts: [{name: shm, mountPath: /shm}]
    command: [sh, -c, 'grep " /shm " /proc/mounts; df -k /shm | tail -1; dd if=/dev/zero of=/shm/big bs=1k count=2048 2>&1; sleep 3600']
`, "apply", "-f", "-")
		out := c.Eventually(`No space left on device`, "logs", "shm")
		testserver.Contains(t, out, "tmpfs /shm tmpfs", "1024")
	})

	t.Run("ephemeral-storage-limit", func(t *testing.T) {
		c.RunIn(`apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: app
    image: registry.wharf.local/wharf/busybox:v1
    resources: {limits: {ephemeral-storage: 2Mi}}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    command: [sh, -c, 'dd if=/dev/zero of=/scratch/big bs=1k count=4096; sleep 3600']
`, "apply", "-f", "-")
		// The agent measures every 10 s.
		c.Eventually(`Failed Evicted`, "get", "pod", "hog", "-o", "jsonpath={.status.phase} {.status.reason}")
		testserver.Contains(t, c.Run("get", "pod", "hog", "-o", "jsonpath={.status.message}"),
			"Pod ephemeral local storage usage exceeds the total limit of containers 2Mi.")
		cond := c.Run("get", "pod", "hog", "-o", `jsonpath={.status.conditions[?(@.type=="DisruptionTarget")].reason}`)
		if strings.TrimSpace(cond) != "TerminationByKubelet" {
			t.Errorf("DisruptionTarget reason %q, want TerminationByKubelet", cond)
		}
		c.Eventually(`Evicted\s+pod/hog\s+Pod ephemeral local storage usage exceeds`, "get", "events", "--field-selector", "involvedObject.name=hog")
	})
}
