package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"

	"wharf.dev/wharf/internal/agent/stream"
	"wharf.dev/wharf/internal/agent/stream/streamtest"
)

func logFile(t *testing.T, lines ...string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("2026-01-02T10:00:00Z stdout F " + l + "\n")
	}
	p := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newServer(t *testing.T, rt *streamtest.Runtime) *httptest.Server {
	t.Helper()
	s := stream.New(stream.Config{Runtime: rt, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestContainerLogs(t *testing.T) {
	rt := streamtest.NewRuntime(t)
	rt.AddContainer(streamtest.Container{Namespace: "ns", Pod: "web", UID: "u1", Name: "app", Attempt: 0, LogPath: logFile(t, "first run")})
	rt.AddContainer(streamtest.Container{Namespace: "ns", Pod: "web", UID: "u1", Name: "app", Attempt: 1, Running: true, LogPath: logFile(t, "second run")})
	rt.AddContainer(streamtest.Container{Namespace: "ns", Pod: "web", UID: "u1", Name: "side", Running: true, LogPath: logFile(t, "side")})
	srv := newServer(t, rt)
	tests := []struct {
		path     string
		wantCode int
		want     string
	}{
		{path: "/containerLogs/ns/web/app", wantCode: 200, want: "second run\n"},
		{path: "/containerLogs/ns/web/app?previous=true", wantCode: 200, want: "first run\n"},
		{path: "/containerLogs/ns/web/side?timestamps=true", wantCode: 200, want: "2026-01-02T10:00:00.000000000Z side\n"},
		{path: "/containerLogs/ns/web/side?previous=true", wantCode: 400, want: "previous terminated container"},
		{path: "/containerLogs/ns/web/nope", wantCode: 404, want: "not found"},
		{path: "/containerLogs/other/web/app", wantCode: 404, want: "not found"},
		{path: "/containerLogs/ns/web/app?tailLines=x", wantCode: 400, want: "tailLines"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.want) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, tt.wantCode, tt.want)
			}
		})
	}
}

// executors are the two ways clients stream: kubectl 1.30+ tries
// WebSocket (v5) first, older clients and the fallback use SPDY.
var executors = map[string]func(*rest.Config, string) (remotecommand.Executor, error){
	"spdy": func(c *rest.Config, u string) (remotecommand.Executor, error) {
		parsed, err := (&http.Request{}).URL.Parse(u)
		if err != nil {
			return nil, err
		}
		return remotecommand.NewSPDYExecutor(c, "POST", parsed)
	},
	"websocket": func(c *rest.Config, u string) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutor(c, "GET", u)
	},
}

// fixedSize is a terminal that is 80x24 and never resized.
type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 80, Height: 24}
}

func TestExecAndAttach(t *testing.T) {
	rt := streamtest.NewRuntime(t)
	rt.AddContainer(streamtest.Container{Namespace: "ns", Pod: "web", UID: "u1", Name: "app", Running: true})
	rt.AddContainer(streamtest.Container{Namespace: "ns", Pod: "web", UID: "u1", Name: "done"})
	srv := newServer(t, rt)
	tests := []struct {
		name     string
		path     string
		stdin    string
		tty      bool
		wantOut  string
		wantExit int // 0: success
		wantErr  bool
	}{
		{name: "exit code", path: "/exec/ns/web/app?command=sh&command=-c&command=exit+3&stdout=1&stderr=1", wantExit: 3},
		{name: "output", path: "/exec/ns/web/app?command=echo&command=hello&stdout=1", wantOut: "hello\n"},
		{name: "stdin", path: "/exec/ns/web/app?command=cat&stdin=1&stdout=1", stdin: "in and out\n", wantOut: "in and out\n"},
		{name: "kubelet parameter names", path: "/exec/ns/web/app?command=echo&command=hi&output=1", wantOut: "hi\n"},
		{name: "terminal size", path: "/exec/ns/web/app?command=tty-size&stdout=1&tty=1&stdin=1", tty: true, wantOut: "80x24\n"},
		{name: "attach", path: "/attach/ns/web/app?stdin=1&stdout=1", stdin: "typed\n", wantOut: "attached\ntyped\n"},
		{name: "container not running", path: "/exec/ns/web/done?command=echo&stdout=1", wantErr: true},
		{name: "no such container", path: "/exec/ns/web/nope?command=echo&stdout=1", wantErr: true},
	}
	for proto, newExec := range executors {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				exec, err := newExec(&rest.Config{Host: srv.URL}, srv.URL+tt.path)
				if err != nil {
					t.Fatal(err)
				}
				// The streams must be those the query names, as kubectl
				// makes them: SPDY servers wait for each.
				var out, errOut bytes.Buffer
				opts := remotecommand.StreamOptions{Stdout: &out, Tty: tt.tty}
				if strings.Contains(tt.path, "stderr=1") {
					opts.Stderr = &errOut
				}
				if tt.stdin != "" || tt.tty {
					opts.Stdin = strings.NewReader(tt.stdin)
				}
				if tt.tty {
					// The terminal's size must arrive before stdin ends.
					pr, pw := io.Pipe()
					defer pw.Close()
					opts.Stdin, opts.TerminalSizeQueue = pr, &fixedSize{}
				}
				err = exec.StreamWithContext(context.Background(), opts)
				var exit clientexec.ExitError
				switch {
				case tt.wantErr:
					if err == nil {
						t.Fatal("stream succeeded, want an error")
					}
					return
				case tt.wantExit != 0:
					if !errors.As(err, &exit) || exit.ExitStatus() != tt.wantExit {
						t.Fatalf("stream: %v, want exit code %d", err, tt.wantExit)
					}
				case err != nil:
					t.Fatalf("stream: %v", err)
				}
				if out.String() != tt.wantOut {
					t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
				}
			})
		}
	}
}
