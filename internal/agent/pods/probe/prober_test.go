package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/exec"
)

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(port)
	return host, n
}

func TestHTTPProbe(t *testing.T) {
	var gotHost, gotAgent, gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotAgent, gotHeader = r.Host, r.UserAgent(), r.Header.Get("X-Check")
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ip, port := hostPort(t, srv.URL)
	ctr := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	tests := []struct {
		path   string
		port   intstr.IntOrString
		want   Result
		output string
	}{
		{"/ok", intstr.FromInt(port), Success, "fine"},
		{"/ok", intstr.FromString("http"), Success, "fine"},
		{"/moved", intstr.FromInt(port), Success, "fine"},
		{"/away", intstr.FromInt(port), Success, ""},
		{"/broken", intstr.FromInt(port), Failure, "HTTP probe failed with statuscode: 500: broken"},
		{"/ok", intstr.FromString("nope"), Failure, `couldn't find port "nope" in container`},
	}
	r := &Runner{}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.port.String(), func(t *testing.T) {
			p := &v1.Probe{TimeoutSeconds: 5, ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{
				Path: tt.path, Port: tt.port,
				HTTPHeaders: []v1.HTTPHeader{{Name: "Host", Value: "example.com"}, {Name: "X-Check", Value: "1"}},
			}}}
			got, out := r.Probe(context.Background(), p, Target{PodIP: ip, Container: ctr})
			if got != tt.want || (tt.output != "" && out != tt.output+"\n" && out != tt.output) {
				t.Errorf("got %v %q, want %v %q", got, out, tt.want, tt.output)
			}
		})
	}
	if gotHost != "example.com" || gotAgent != userAgent || gotHeader != "1" {
		t.Errorf("request Host %q, User-Agent %q, X-Check %q", gotHost, gotAgent, gotHeader)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	r := &Runner{}
	probe := &v1.Probe{TimeoutSeconds: 5, ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt(port)}}}
	if got, out := r.Probe(context.Background(), probe, Target{PodIP: "127.0.0.1"}); got != Success {
		t.Errorf("open port: %v %s", got, out)
	}
	l.Close()
	if got, _ := r.Probe(context.Background(), probe, Target{PodIP: "127.0.0.1"}); got != Failure {
		t.Errorf("closed port: %v", got)
	}
}

func TestExecProbe(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Result
		out  string
	}{
		{"exit 0", nil, Success, "ok"},
		{"exit 1", exec.CodeExitError{Err: errors.New("exit status 1"), Code: 1}, Failure, `command "check --fast" exited with 1: ok`},
		{"runtime error", errors.New("container not running"), Failure, `command "check --fast": container not running: ok`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotID string
			var gotTimeout time.Duration
			r := &Runner{Exec: func(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
				gotID, gotTimeout = id, timeout
				return []byte("ok\n"), nil, tt.err
			}}
			p := &v1.Probe{TimeoutSeconds: 3, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"check", "--fast"}}}}
			got, out := r.Probe(context.Background(), p, Target{ContainerID: "c1"})
			if got != tt.want || out != tt.out {
				t.Errorf("got %v %q, want %v %q", got, out, tt.want, tt.out)
			}
			if gotID != "c1" || gotTimeout != 3*time.Second {
				t.Errorf("exec in %q with timeout %v", gotID, gotTimeout)
			}
		})
	}
}
