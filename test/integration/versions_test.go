//go:build integration

package integration

import (
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// eventV1 is an events.k8s.io/v1 event about a deployment, as a
// controller using the newer events API writes it.
const eventV1 = `apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: web.tested
eventTime: "2026-01-02T03:04:05.000000Z"
reportingController: example.com/tester
reportingInstance: tester-1
action: Testing
reason: Tested
type: Normal
note: written through events.k8s.io/v1
regarding:
  apiVersion: apps/v1
  kind: Deployment
  name: web
  namespace: default
`

// TestAPIVersions drives the kinds served in more than one version with
// the kubectl releases that ask for the older ones: autoscale (1.27 and
// 1.29 post autoscaling/v1), auth whoami (1.27 asks
// authentication.k8s.io/v1beta1) and events through events.k8s.io/v1.
func TestAPIVersions(t *testing.T) {
	testserver.Kubectl(t, "33")
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")

	t.Run("autoscale", func(t *testing.T) {
		for _, minor := range []string{"27", "29", "33"} {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			name := "web" + minor
			testserver.Contains(t, k.Run("create", "deployment", name, "--image=registry.wharf.local/wharf/testapp:v1"), "deployment.apps/"+name+" created")
			testserver.Contains(t, k.Run("autoscale", "deployment", name, "--max", "3"), "horizontalpodautoscaler.autoscaling/"+name+" autoscaled")
			// autoscaling/v1's implicit target, made explicit in v2.
			testserver.Contains(t, k.Run("get", "hpa", name), "Deployment/"+name, "cpu: <unknown>/80%")
			testserver.Contains(t, k.Run("get", "horizontalpodautoscalers.v1.autoscaling", name, "-o", "jsonpath={.spec.targetCPUUtilizationPercentage} {.spec.maxReplicas}"), "80 3")
			testserver.Contains(t, k.Run("get", "horizontalpodautoscalers.v2.autoscaling", name, "-o", "jsonpath={.spec.metrics[0].resource.target.averageUtilization}"), "80")
			testserver.Contains(t, k.Run("describe", "hpa", name), "Reference:", "Deployment/"+name, "Max replicas:")
		}
		k := testserver.NewKubectl(t, "27", srv.kubeconfig())
		testserver.Contains(t, k.Run("autoscale", "deployment", "web29", "--name", "web29-cpu", "--max", "5", "--cpu-percent", "50"), "autoscaled")
		testserver.Contains(t, k.Run("get", "hpa", "web29-cpu"), "cpu: <unknown>/50%")
		// A v2 field v1 has no place for survives a v1 read-modify-write.
		k33 := testserver.NewKubectl(t, "33", srv.kubeconfig())
		k33.Run("patch", "horizontalpodautoscalers.v2.autoscaling", "web27", "--type=merge", "-p", `{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":60}}}}`)
		k.Run("patch", "horizontalpodautoscalers.v1.autoscaling", "web27", "--type=merge", "-p", `{"spec":{"maxReplicas":4}}`)
		testserver.Contains(t, k33.Run("get", "horizontalpodautoscalers.v2.autoscaling", "web27", "-o", "jsonpath={.spec.maxReplicas} {.spec.behavior.scaleDown.stabilizationWindowSeconds}"), "4 60")
		// The write is recorded in the version it came in.
		testserver.Contains(t, k33.Run("get", "hpa", "web29", "-o", "yaml", "--show-managed-fields"), "apiVersion: autoscaling/v1", "manager: kubectl-autoscale")
	})

	t.Run("whoami", func(t *testing.T) {
		for _, minor := range []string{"27", "33"} {
			out := testserver.NewKubectl(t, minor, srv.kubeconfig()).Run("auth", "whoami")
			testserver.Contains(t, out, "Username", "admin", "system:masters")
		}
	})

	t.Run("events", func(t *testing.T) {
		k := testserver.NewKubectl(t, "33", srv.kubeconfig())
		k.Run("create", "deployment", "web", "--image=registry.wharf.local/wharf/testapp:v1")
		testserver.Contains(t, k.RunIn(eventV1, "apply", "-f", "-"), "event.events.k8s.io/web.tested created")
		testserver.Contains(t, k.RunIn(eventV1, "apply", "--server-side", "-f", "-"), "event.events.k8s.io/web.tested serverside-applied")

		// kubectl events reads core/v1: the event written through
		// events.k8s.io/v1 is there, under core/v1's names.
		out := k.Eventually(`ScalingReplicaSet`, "events", "--for", "deployment/web")
		testserver.Contains(t, out, "Tested", "Deployment/web", "written through events.k8s.io/v1")
		testserver.Contains(t, k.Run("get", "events", "web.tested", "-o", "jsonpath={.message} {.involvedObject.name} {.reportingComponent}"),
			"written through events.k8s.io/v1 web example.com/tester")

		// And every event, written by the controllers through core/v1,
		// reads through events.k8s.io/v1.
		out = k.Run("get", "events.v1.events.k8s.io")
		checkHeaders(t, "get events.v1.events.k8s.io", out, "LAST SEEN TYPE REASON OBJECT MESSAGE")
		testserver.Contains(t, out, "ScalingReplicaSet", "deployment/web", "Tested")
		names := k.Run("get", "events.events.k8s.io", "--field-selector", "regarding.name=web,regarding.kind=Deployment", "-o", "name")
		testserver.Contains(t, names, "event.events.k8s.io/web.tested")
		if strings.Contains(names, "replicaset") {
			t.Errorf("regarding.kind=Deployment selected more:\n%s", names)
		}
		testserver.Contains(t, k.Run("get", "events.events.k8s.io", "web.tested", "-o", "jsonpath={.note} {.regarding.kind} {.reportingController}"),
			"written through events.k8s.io/v1 Deployment example.com/tester")
		// Upstream's events.k8s.io selects by regarding, not involvedObject.
		if out, err := k.Cmd("", "get", "events.events.k8s.io", "--field-selector", "involvedObject.name=web").CombinedOutput(); err == nil ||
			!strings.Contains(string(out), "field label not supported") {
			t.Errorf("involvedObject selector through events.k8s.io accepted: %v\n%s", err, out)
		}
		// Managed fields name the version each write came in.
		managed := k.Run("get", "events", "web.tested", "-o", "yaml", "--show-managed-fields")
		testserver.Contains(t, managed, "apiVersion: events.k8s.io/v1", "operation: Apply")

		// The schema of the new version, as kubectl explain reads it.
		out = k.Run("explain", "events", "--api-version=events.k8s.io/v1")
		testserver.Contains(t, out, "GROUP:      events.k8s.io", "regarding", "note", "deprecatedSource")
		testserver.Contains(t, k.Run("explain", "horizontalpodautoscalers.spec", "--api-version=autoscaling/v1"), "targetCPUUtilizationPercentage")
		testserver.Contains(t, k.Run("api-versions"), "events.k8s.io/v1", "autoscaling/v1", "autoscaling/v2", "authentication.k8s.io/v1beta1")
	})
}
