//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

func readExample(t *testing.T) string {
	data, err := os.ReadFile("../../examples/hello/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestKubectlSession runs the user session with the real kubectl,
// oldest and newest supported releases, against a server with two
// simulated nodes.
func TestKubectlSession(t *testing.T) {
	for _, minor := range []string{"33", "29"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go simnode.Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), srv.client(), simnode.Config{Count: 2, Prefix: "node"})
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			kubectlSession(t, k)
		})
	}
}

func kubectlSession(t *testing.T, k *testserver.KubectlRunner) {
	hello := readExample(t)

	out := k.Eventually(`node-1\s+Ready`, "get", "nodes", "-o", "wide")
	testserver.Contains(t, out, "INTERNAL-IP", "node-0")

	testserver.Contains(t, k.RunIn(hello, "apply", "-f", "-"), "deployment.apps/hello created")
	testserver.Contains(t, k.Run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	testserver.Contains(t, k.RunIn(hello, "apply", "-f", "-"), "deployment.apps/hello unchanged")

	// get -w shows changes as they happen.
	watch := k.Cmd("", "get", "pods", "-o", "wide", "-w")
	var wout testserver.Output
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	testserver.Contains(t, k.Run("scale", "deployment", "hello", "--replicas", "5"), "deployment.apps/hello scaled")
	k.Eventually(`5/5`, "get", "deployment", "hello")
	testserver.WaitFor(t, "get -w to show 5 Running lines", 30*time.Second, func() (bool, error) {
		out := wout.String()
		n := strings.Count(out, "Running")
		return n >= 5, fmt.Errorf("%d Running lines:\n%s", n, out)
	})
	watch.Process.Kill()
	watch.Wait()
	if n := strings.Count(wout.String(), "Running"); n < 5 {
		t.Errorf("get -w showed %d Running lines, want at least 5:\n%s", n, wout.String())
	}
	testserver.Contains(t, wout.String(), "NAME", "READY", "STATUS", "NODE")

	pods := k.Run("get", "pods", "-l", "app=hello", "-o", "name")
	first := strings.Fields(pods)[0]
	testserver.Contains(t, k.Run("describe", first), "Status:", "Running", "Node:", "Scheduled")
	testserver.Contains(t, k.Run("describe", "node", "node-0"), "Capacity:", "Non-terminated Pods:", "Ready")
	testserver.Contains(t, k.Run("describe", "deployment", "hello"), "Replicas:", "5 desired", "NewReplicaSet:", "ScalingReplicaSet")

	// A changed image rolls out a new replica set; undo brings the old one back.
	changed := strings.Replace(hello, "testapp:v1", "testapp:v2", 1)
	testserver.Contains(t, k.RunIn(changed, "apply", "-f", "-"), "deployment.apps/hello configured")
	testserver.Contains(t, k.Run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	testserver.Contains(t, k.Run("get", "deployment", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), "testapp:v2")
	if n := len(strings.Fields(k.Run("get", "rs", "-l", "app=hello", "-o", "name"))); n != 2 {
		t.Errorf("%d replica sets after the image change, want 2", n)
	}
	testserver.Contains(t, k.Run("rollout", "history", "deployment/hello"), "REVISION", "1", "2")
	testserver.Contains(t, k.Run("rollout", "undo", "deployment/hello"), "rolled back")
	testserver.Contains(t, k.Run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	testserver.Contains(t, k.Run("get", "deployment", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), "testapp:v1")

	// kubectl 1.32+ sends this body as protobuf.
	testserver.Contains(t, k.Run("create", "deployment", "web", "--image=registry.wharf.local/wharf/testapp:v1", "--replicas=2"), "deployment.apps/web created")
	k.Eventually(`web\s+2/2`, "get", "deployments")

	testserver.Contains(t, k.Run("get", "events"), "Scheduled", "SuccessfulCreate")

	// Deleting a deployment takes its replica sets and pods with it.
	testserver.Contains(t, k.Run("delete", "deployment", "hello"), `deployment.apps "hello" deleted`)
	k.Eventually(`^No resources found`, "get", "rs,pods", "-l", "app=hello")

	// Bad input is refused with a message naming the field.
	bad := strings.Replace(hello, "name: hello\n  labels", "name: Hello_World\n  labels", 1)
	badOut, err := k.Cmd(bad, "apply", "-f", "-").CombinedOutput()
	if err == nil || !strings.Contains(string(badOut), "metadata.name") {
		t.Errorf("invalid name accepted or unexplained: %v\n%s", err, badOut)
	}
	_ = metav1.Now
}
