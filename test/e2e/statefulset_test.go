//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/testserver"
)

// TestStatefulSet runs a StatefulSet of 3 replicas behind a headless
// Service on a real node: the pods come up in order as web-0, web-1, web-2,
// each resolves every member's stable name (web-0.web, …) through the
// cluster DNS, and a deleted pod comes back under the same name, reachable
// at the same DNS name. No volumeClaimTemplates: storage is tested apart.
func TestStatefulSet(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")
	c.RunIn(`apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: None, selector: {app: web}, ports: [{port: 8080}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.wharf.local/wharf/testapp:v1, args: [serve, --port=8080]}]
`, "apply", "-f", "-")
	testserver.Contains(t, c.Run("rollout", "status", "sts/web", "--timeout=180s"), "partitioned roll out complete: 3 new pods have been updated")
	if out := c.Run("get", "sts", "web"); !regexp.MustCompile(`web\s+3/3\s+`).MatchString(out) {
		t.Errorf("kubectl get sts:\n%s", out)
	}
	// In order: web-1 was created after web-0 was ready, and so on.
	events := c.Run("get", "events", "--field-selector", "involvedObject.kind=StatefulSet", "--sort-by=.metadata.creationTimestamp", "-o", "custom-columns=MSG:.message")
	if !regexp.MustCompile(`(?s)create Pod web-0 in StatefulSet web successful.*create Pod web-1 in StatefulSet web successful.*create Pod web-2 in StatefulSet web successful`).MatchString(events) {
		t.Errorf("events:\n%s", events)
	}

	ips := func() map[string]string {
		out := c.Run("get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}`)
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				m[f[0]] = f[1]
			}
		}
		return m
	}
	// resolvesAll: from pod from, every member's stable name is its IP.
	resolvesAll := func(from string) {
		t.Helper()
		testserver.WaitFor(t, from+" to resolve web-0.web, web-1.web and web-2.web", 60*time.Second, func() (bool, error) {
			want := ips()
			script := "/testapp dns-lookup web-0.web; /testapp dns-lookup web-1.web; /testapp dns-lookup web-2.web.default.svc.cluster.local"
			out, err := c.Cmd("", "exec", from, "--", "sh", "-c", script).CombinedOutput()
			if err != nil {
				return false, fmt.Errorf("%v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			for i, name := range []string{"web-0", "web-1", "web-2"} {
				if i >= len(lines) || want[name] == "" || !strings.Contains(lines[i], want[name]) {
					return false, fmt.Errorf("pods %v, lookups:\n%s", want, out)
				}
			}
			return true, nil
		})
	}
	for _, p := range []string{"web-0", "web-1", "web-2"} {
		resolvesAll(p)
	}
	if h := strings.TrimSpace(c.Run("exec", "web-1", "--", "hostname")); h != "web-1" {
		t.Errorf("web-1's hostname is %q", h)
	}

	// A deleted pod comes back under its name, with a new IP behind the
	// same DNS name.
	oldUID := c.Run("get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}")
	c.Run("delete", "pod", "web-1", "--wait=true")
	testserver.WaitFor(t, "web-1 back and ready", 120*time.Second, func() (bool, error) {
		out, err := c.Cmd("", "get", "pod", "web-1", "-o", `jsonpath={.metadata.uid} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}`).CombinedOutput()
		f := strings.Fields(string(out))
		return err == nil && len(f) == 3 && f[0] != oldUID && f[1] == "Running" && f[2] == "True", fmt.Errorf("%v: %s", err, out)
	})
	resolvesAll("web-0")
	testserver.Contains(t, c.Run("rollout", "status", "sts/web", "--timeout=60s"), "3 new pods have been updated")
}
