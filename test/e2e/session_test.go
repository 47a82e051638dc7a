//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/testserver"
)

// TestUserSession is the session: up, the hello app, logs, exec,
// HTTP to a pod, down --purge with nothing left behind.
func TestUserSession(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes", "-o", "wide")

	testserver.Contains(t, c.Run("apply", "-f", "examples/hello/"), "configmap/hello created", "deployment.apps/hello created")
	testserver.Contains(t, c.Run("rollout", "status", "deployment/hello", "--timeout=90s"), "successfully rolled out")
	pods := c.Run("get", "pods", "-o", "wide", "-l", "app=hello")
	if strings.Count(pods, "Running") != 3 {
		t.Fatalf("want 3 running pods:\n%s", pods)
	}

	// HTTP from the host to a pod, answered with the ConfigMap's message.
	ip := strings.TrimSpace(c.Run("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[0].status.podIP}"))
	var answer struct {
		Hostname, PodIP, Message string
	}
	body := httpGet(t, "http://"+ip+":8080/")
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	if answer.PodIP != ip || answer.Message != "Hello from Wharf!" {
		t.Errorf("pod answered %+v, want its IP %s and the ConfigMap's message", answer, ip)
	}

	// Logs: the app logs a line per request.
	testserver.Contains(t, c.Run("logs", "deploy/hello", "--tail", "5"), "path=/")
	follow := c.Cmd("", "logs", "-f", "deploy/hello")
	var fout testserver.Output
	follow.Stdout = &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	// Readiness probes every second add lines.
	testserver.WaitFor(t, "logs -f to show new lines", 30*time.Second, func() (bool, error) {
		out := fout.String()
		return strings.Count(out, "/readyz") >= 2, fmt.Errorf("so far:\n%s", out)
	})
	follow.Process.Kill()
	follow.Wait()
	if strings.Count(fout.String(), "/readyz") < 2 {
		t.Errorf("logs -f showed no new lines:\n%s", fout.String())
	}

	// Exec: output, stdin, exit codes, over WebSocket (kubectl's default) and SPDY.
	for _, proto := range []string{"websocket", "spdy"} {
		t.Run("exec-"+proto, func(t *testing.T) {
			cmd := c.Cmd("cat /etc/hello/message; echo; hostname; exit 3\n", "exec", "-i", "deploy/hello", "--", "sh")
			if proto == "spdy" {
				cmd.Env = append(cmd.Env, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
			}
			out, err := cmd.CombinedOutput()
			testserver.Contains(t, string(out), "Hello from Wharf!", "hello-")
			if cmd.ProcessState.ExitCode() != 3 {
				t.Errorf("exit code %d (%v), want 3:\n%s", cmd.ProcessState.ExitCode(), err, out)
			}
		})
	}
	// A terminal: kubectl -t needs one on its own stdin; script(1) gives it one.
	tty := c.Cmd("", "exec", "-it", "deploy/hello", "--", "sh", "-c", "tty; test -t 0 && echo tty-ok")
	tty.Args = []string{"script", "-qec", strings.Join(tty.Args, " "), "/dev/null"}
	tty.Path = "/usr/bin/script"
	if out, err := tty.CombinedOutput(); err != nil || !strings.Contains(string(out), "tty-ok") {
		t.Errorf("exec -it: %v\n%s", err, out)
	}

	// Pod to pod: one pod fetches another's page by pod IP.
	ip2 := strings.TrimSpace(c.Run("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[1].status.podIP}"))
	first := strings.TrimSpace(c.Run("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[0].metadata.name}"))
	testserver.Contains(t, c.Run("exec", first, "--", "wget", "-qO-", "http://"+ip2+":8080/"), `"podIP": "`+ip2+`"`)

	// A host port reaches the pod through the node's address.
	out, err := c.Cmd(`apiVersion: v1
kind: Pod
metadata: {name: hostport}
spec:
  containers:
  - name: c
    image: registry.wharf.local/wharf/testapp:v1
    args: ["serve", "--port=8080"]
    ports: [{containerPort: 8080, hostPort: 18080}]
`, "apply", "-f", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	c.Eventually(`hostport\s+1/1\s+Running`, "get", "pod", "hostport")
	testserver.Contains(t, httpGet(t, "http://127.0.0.1:18080/"), `"hostname": "hostport"`)

	uids := strings.Fields(c.Run("get", "pods", "-o", "jsonpath={.items[*].metadata.uid}"))
	testserver.Contains(t, c.Run("delete", "-f", "examples/hello/"), `deployment.apps "hello" deleted`)
	c.Run("delete", "pod", "hostport", "--grace-period=1")
	c.Eventually(`^No resources found`, "get", "pods")
	// Deleted pods leave no cgroups and no network namespaces.
	testserver.WaitFor(t, "the pods' cgroups and network namespaces gone", 30*time.Second, func() (bool, error) {
		for _, uid := range uids {
			if left, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/e2e/pod" + uid); len(left) > 0 {
				return false, fmt.Errorf("cgroups %v", left)
			}
		}
		mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
		for _, line := range strings.Split(string(mountinfo), "\n") {
			if strings.Contains(line, c.stateDir) && strings.Contains(line, " nsfs ") {
				return false, fmt.Errorf("netns mount %s", line)
			}
		}
		return true, nil
	})
}

// httpGet returns the body of the first GET of url that gets an answer.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	testserver.WaitFor(t, "an answer to GET "+url, 30*time.Second, func() (bool, error) {
		var err error
		body, err = getOnce(url)
		return err == nil, err
	})
	return body
}

// getOnce returns the body of a GET of url on a new connection, waiting
// 2 s at most.
func getOnce(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func httpPost(t *testing.T, url string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Post(url, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

var _ = fmt.Sprint
