package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/websocket"
)

func testServer(t *testing.T, message, messageFile string) (*server, *httptest.Server) {
	t.Helper()
	s := newServer(slog.New(slog.NewTextHandler(io.Discard, nil)), "10.244.0.5", message, messageFile)
	ts := httptest.NewServer(s.handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestReadinessToggle(t *testing.T) {
	_, ts := testServer(t, "", "")
	type step struct {
		method, path string
		want         int
	}
	steps := []step{
		{"GET", "/readyz", 200},
		{"POST", "/readyz?ready=false", 200},
		{"GET", "/readyz", 503},
		{"GET", "/healthz", 200}, // liveness is independent of readiness
		{"POST", "/readyz?ready=maybe", 400},
		{"GET", "/readyz", 503},
		{"POST", "/readyz?ready=true", 200},
		{"GET", "/readyz", 200},
		{"DELETE", "/readyz", 405},
	}
	for i, s := range steps {
		if got, body := do(t, s.method, ts.URL+s.path); got != s.want {
			t.Errorf("step %d: %s %s = %d (%s), want %d", i, s.method, s.path, got, body, s.want)
		}
	}
}

func TestExitEndpoint(t *testing.T) {
	tests := []struct {
		query    string
		wantCode int
		wantExit int // -1: no exit
	}{
		{"code=3", 200, 3},
		{"", 200, 0},
		{"code=255", 200, 255},
		{"code=256", 400, -1},
		{"code=-1", 400, -1},
		{"code=abc", 400, -1},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			s, ts := testServer(t, "", "")
			code, body := do(t, "POST", ts.URL+"/exit?"+tt.query)
			if code != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", code, body, tt.wantCode)
			}
			got := -1
			select {
			case got = <-s.exit:
			default:
			}
			if got != tt.wantExit {
				t.Errorf("exit %d, want %d", got, tt.wantExit)
			}
		})
	}
}

func TestRootAnswer(t *testing.T) {
	file := filepath.Join(t.TempDir(), "message")
	tests := []struct {
		name, message, file, content string
		want                         string
	}{
		{name: "flag", message: "hello", want: "hello"},
		{name: "file wins", message: "hello", file: file, content: "from configmap\n", want: "from configmap"},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file != "" {
				if err := os.WriteFile(tt.file, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, ts := testServer(t, tt.message, tt.file)
			req, _ := http.NewRequest("GET", ts.URL+"/some/path", nil)
			req.Header.Set("X-Test", "yes")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var a answer
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatal(err)
			}
			got := answer{PodIP: a.PodIP, Method: a.Method, Path: a.Path, Message: a.Message, MessageError: a.MessageError}
			want := answer{PodIP: "10.244.0.5", Method: "GET", Path: "/some/path", Message: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if a.Headers.Get("X-Test") != "yes" {
				t.Errorf("headers %v lack X-Test", a.Headers)
			}
		})
	}
}

func TestWebSocketEcho(t *testing.T) {
	_, ts := testServer(t, "", "")
	ws, err := websocket.Dial(strings.Replace(ts.URL, "http://", "ws://", 1)+"/ws", "", "http://client.test/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", "again"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
}
