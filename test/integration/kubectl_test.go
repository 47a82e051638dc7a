//go:build integration

package integration

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/simnode"
)

const kubectlDir = "/usr/lib/google-cloud-sdk/bin"

// kubectl runs one kubectl release against one server.
type kubectl struct {
	t    *testing.T
	bin  string
	srv  *serverProc
	home string
}

func newKubectl(t *testing.T, minor string, srv *serverProc) *kubectl {
	bin := filepath.Join(kubectlDir, "kubectl.1."+minor)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("kubectl 1.%s is not installed at %s", minor, bin)
	}
	return &kubectl{t: t, bin: bin, srv: srv, home: t.TempDir()}
}

func (k *kubectl) cmd(stdin string, args ...string) *exec.Cmd {
	cmd := exec.Command(k.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.srv.kubeconfig(), "HOME="+k.home)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

// run runs kubectl and fails the test unless it succeeds.
func (k *kubectl) run(args ...string) string {
	k.t.Helper()
	out, err := k.cmd("", args...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (k *kubectl) runIn(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.cmd(stdin, args...).CombinedOutput()
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// eventually runs kubectl until its output matches re.
func (k *kubectl) eventually(re string, args ...string) string {
	k.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var out []byte
	for time.Now().Before(deadline) {
		out, _ = k.cmd("", args...).CombinedOutput()
		if regexp.MustCompile(re).Match(out) {
			return string(out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	k.t.Fatalf("kubectl %s never matched %q; last output:\n%s", strings.Join(args, " "), re, out)
	return ""
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

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
			k := newKubectl(t, minor, srv)
			kubectlSession(t, k)
		})
	}
}

func kubectlSession(t *testing.T, k *kubectl) {
	hello := readExample(t)

	out := k.eventually(`node-1\s+Ready`, "get", "nodes", "-o", "wide")
	contains(t, out, "INTERNAL-IP", "node-0")

	contains(t, k.runIn(hello, "apply", "-f", "-"), "deployment.apps/hello created")
	contains(t, k.run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	contains(t, k.runIn(hello, "apply", "-f", "-"), "deployment.apps/hello unchanged")

	// get -w shows changes as they happen.
	watch := k.cmd("", "get", "pods", "-o", "wide", "-w")
	var wout bytes.Buffer
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	contains(t, k.run("scale", "deployment", "hello", "--replicas", "5"), "deployment.apps/hello scaled")
	k.eventually(`5/5`, "get", "deployment", "hello")
	time.Sleep(500 * time.Millisecond)
	watch.Process.Kill()
	watch.Wait()
	if n := strings.Count(wout.String(), "Running"); n < 5 {
		t.Errorf("get -w showed %d Running lines, want at least 5:\n%s", n, wout.String())
	}
	contains(t, wout.String(), "NAME", "READY", "STATUS", "NODE")

	pods := k.run("get", "pods", "-l", "app=hello", "-o", "name")
	first := strings.Fields(pods)[0]
	contains(t, k.run("describe", first), "Status:", "Running", "Node:", "Scheduled")
	contains(t, k.run("describe", "node", "node-0"), "Capacity:", "Non-terminated Pods:", "Ready")
	contains(t, k.run("describe", "deployment", "hello"), "Replicas:", "5 desired", "NewReplicaSet:", "ScalingReplicaSet")

	// A changed image rolls out a new replica set; undo brings the old one back.
	changed := strings.Replace(hello, "testapp:v1", "testapp:v2", 1)
	contains(t, k.runIn(changed, "apply", "-f", "-"), "deployment.apps/hello configured")
	contains(t, k.run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	contains(t, k.run("get", "deployment", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), "testapp:v2")
	if n := len(strings.Fields(k.run("get", "rs", "-l", "app=hello", "-o", "name"))); n != 2 {
		t.Errorf("%d replica sets after the image change, want 2", n)
	}
	contains(t, k.run("rollout", "history", "deployment/hello"), "REVISION", "1", "2")
	contains(t, k.run("rollout", "undo", "deployment/hello"), "rolled back")
	contains(t, k.run("rollout", "status", "deployment/hello", "--timeout=60s"), "successfully rolled out")
	contains(t, k.run("get", "deployment", "hello", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), "testapp:v1")

	// kubectl 1.32+ sends this body as protobuf.
	contains(t, k.run("create", "deployment", "web", "--image=registry.wharf.local/wharf/testapp:v1", "--replicas=2"), "deployment.apps/web created")
	k.eventually(`web\s+2/2`, "get", "deployments")

	contains(t, k.run("get", "events"), "Scheduled", "SuccessfulCreate")

	// Deleting a deployment takes its replica sets and pods with it.
	contains(t, k.run("delete", "deployment", "hello"), `deployment.apps "hello" deleted`)
	k.eventually(`^No resources found`, "get", "rs,pods", "-l", "app=hello")

	// Bad input is refused with a message naming the field.
	bad := strings.Replace(hello, "name: hello\n  labels", "name: Hello_World\n  labels", 1)
	badOut, err := k.cmd(bad, "apply", "-f", "-").CombinedOutput()
	if err == nil || !strings.Contains(string(badOut), "metadata.name") {
		t.Errorf("invalid name accepted or unexplained: %v\n%s", err, badOut)
	}
	_ = metav1.Now
}
