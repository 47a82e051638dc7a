package apiserver_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/agent/stream"
	"wharf.dev/wharf/internal/agent/stream/streamtest"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/testserver"
)

// seen is what the fake agent was asked.
type seen struct {
	mu   sync.Mutex
	reqs []string // "path?query upgrade=<Upgrade header> cn=<client CN> auth=<Authorization>"
}

func (s *seen) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, r.URL.RequestURI()+" upgrade="+r.Header.Get("Upgrade")+" cn="+cn+" auth="+r.Header.Get("Authorization"))
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return ""
	}
	return s.reqs[len(s.reqs)-1]
}

// proxyEnv is a control plane with one node whose agent is the real
// stream server on a fake runtime, serving HTTPS with a certificate from
// the cluster CA.
type proxyEnv struct {
	srv  *testserver.Server
	seen *seen
	rt   *streamtest.Runtime
	// webLog and webID are the log file and container ID of pod web's app.
	webLog, webID string
}

func startProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	srv := testserver.Start(t, func(o *controlplane.Options) { o.DisableControllers = true })
	ca, err := pki.EnsureCA(filepath.Join(srv.DataDir, "pki"), "wharf-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServing(t.TempDir(), "agent", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	rt := streamtest.NewRuntime(t)
	logPath := filepath.Join(t.TempDir(), "0.log")
	os.WriteFile(logPath, []byte("2026-01-02T10:00:00Z stdout F one\n2026-01-02T10:00:01Z stdout F two\n"), 0o600)
	webID := rt.AddContainer(streamtest.Container{Namespace: "default", Pod: "web", UID: "u1", Name: "app", Running: true, LogPath: logPath})
	rt.AddContainer(streamtest.Container{Namespace: "default", Pod: "two", UID: "u2", Name: "b", Running: true, LogPath: logPath})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	agent := stream.New(stream.Config{Runtime: rt, Cert: cert, ClientCAs: pool, Logger: slog.New(slog.DiscardHandler)})
	s := &seen{}
	ts := httptest.NewUnstartedServer(s.wrap(agent.Handler()))
	ts.TLS = agent.TLSConfig()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	_, portStr, _ := net.SplitHostPort(ts.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	ctx := context.Background()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		},
	}
	if _, err := srv.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name, nodeName string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: nodeName}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.wharf.local/wharf/testapp:v1"})
		}
		return p
	}
	annotated := pod("two", "n1", "a", "b")
	annotated.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "b"}
	for _, p := range []*corev1.Pod{pod("web", "n1", "app"), annotated, pod("three", "n1", "a", "b"), pod("pending", "", "app")} {
		if _, err := srv.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return &proxyEnv{srv: srv, seen: s, rt: rt, webLog: logPath, webID: webID}
}

// kubectl runs the real kubectl 1.33 with extra environment variables.
func (e *proxyEnv) kubectl(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testserver.Kubectl(t, "33"), args...)
	cmd.Env = append(os.Environ(), append(env, "KUBECONFIG="+e.srv.AdminKubeconfig, "HOME="+e.srv.DataDir)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return string(out), 0
}

func TestKubectlLogsAndExecThroughProxy(t *testing.T) {
	e := startProxyEnv(t)
	out, code := e.kubectl(t, nil, "logs", "web", "--tail=1", "--timestamps")
	if code != 0 || out != "2026-01-02T10:00:01.000000000Z two\n" {
		t.Fatalf("kubectl logs: exit %d, %q", code, out)
	}
	got := e.seen.last()
	for _, want := range []string{"/containerLogs/default/web/app?", "tailLines=1", "timestamps=true", "cn=system:apiserver", "auth= "} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("agent saw %q, want %q in it", got, want)
		}
	}

	tests := []struct {
		name        string
		env         []string
		args        []string
		wantCode    int
		wantOut     string
		wantUpgrade string
	}{
		{name: "websocket exit code", args: []string{"exec", "web", "--", "sh", "-c", "exit 3"}, wantCode: 3, wantUpgrade: "websocket"},
		{name: "spdy exit code", env: []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}, args: []string{"exec", "web", "--", "sh", "-c", "exit 3"}, wantCode: 3, wantUpgrade: "SPDY/3.1"},
		{name: "websocket output", args: []string{"exec", "web", "--", "echo", "hello"}, wantOut: "hello\n", wantUpgrade: "websocket"},
		{name: "spdy stdin", env: []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"}, args: []string{"exec", "-i", "web", "--", "cat"}, wantOut: "", wantUpgrade: "SPDY/3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := e.kubectl(t, tt.env, tt.args...)
			if code != tt.wantCode || (tt.wantOut != "" && out != tt.wantOut) {
				t.Fatalf("kubectl %v: exit %d, %q; want exit %d, %q", tt.args, code, out, tt.wantCode, tt.wantOut)
			}
			if got := e.seen.last(); !strings.Contains(got, "upgrade="+tt.wantUpgrade) || !strings.HasPrefix(got, "/exec/default/web/app?") {
				t.Errorf("agent saw %q, want an exec upgraded with %s", got, tt.wantUpgrade)
			}
		})
	}
}

func TestProxyRefusals(t *testing.T) {
	e := startProxyEnv(t)
	ctx := context.Background()
	pods := e.srv.Client.CoreV1().Pods("default")
	tests := []struct {
		name     string
		pod      string
		opts     corev1.PodLogOptions
		wantCode int32
		wantMsg  string
	}{
		{name: "no such pod", pod: "nope", wantCode: 404, wantMsg: "not found"},
		{name: "not scheduled", pod: "pending", wantCode: 400, wantMsg: "does not have a host assigned"},
		{name: "two containers, none named", pod: "three", wantCode: 400, wantMsg: "choose one of: [a b]"},
		{name: "unknown container", pod: "web", opts: corev1.PodLogOptions{Container: "x"}, wantCode: 400, wantMsg: "not valid"},
		{name: "both since options", pod: "web", opts: corev1.PodLogOptions{SinceSeconds: ptr.To[int64](1), SinceTime: &metav1.Time{Time: time.Now()}}, wantCode: 400, wantMsg: "at most one"},
		{name: "annotated default container", pod: "two", wantCode: 200},
		{name: "limitBytes", pod: "web", opts: corev1.PodLogOptions{LimitBytes: ptr.To[int64](2)}, wantCode: 200, wantMsg: "on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Error, not Raw, decodes the Status the server sent.
			res := pods.GetLogs(tt.pod, &tt.opts).Do(ctx)
			body, _ := res.Raw()
			err := res.Error()
			var st interface{ Status() metav1.Status }
			switch {
			case tt.wantCode == 200 && err != nil:
				t.Fatalf("logs: %v", err)
			case tt.wantCode != 200 && (!errors.As(err, &st) || st.Status().Code != tt.wantCode || !strings.Contains(st.Status().Message, tt.wantMsg)):
				t.Fatalf("logs: %v, want %d with %q", err, tt.wantCode, tt.wantMsg)
			case tt.wantCode == 200 && tt.wantMsg != "" && string(body) != tt.wantMsg:
				t.Errorf("logs: %q, want %q", body, tt.wantMsg)
			}
		})
	}
	if got := e.seen.last(); !strings.Contains(got, "/containerLogs/default/web/app?limitBytes=2") {
		t.Errorf("agent saw %q", got)
	}
}

// TestKubectlLogsFollow: lines reach kubectl as they are logged (the proxy
// flushes), and the stream ends when the container stops.
func TestKubectlLogsFollow(t *testing.T) {
	e := startProxyEnv(t)
	cmd := exec.Command(testserver.Kubectl(t, "33"), "logs", "-f", "web")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.srv.AdminKubeconfig, "HOME="+e.srv.DataDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewReader(stdout)
	expect := func(want string) {
		t.Helper()
		if got, err := lines.ReadString('\n'); got != want {
			t.Fatalf("kubectl logs -f printed %q (%v), want %q", got, err, want)
		}
	}
	expect("one\n")
	expect("two\n")
	f, err := os.OpenFile(e.webLog, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-01-02T10:00:02Z stdout F three\n")
	f.Close()
	expect("three\n")
	e.rt.Lock()
	e.rt.Containers[e.webID].State = runtimeapi.ContainerState_CONTAINER_EXITED
	e.rt.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kubectl logs -f after the container stopped: %v", err)
	}
}
