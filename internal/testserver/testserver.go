// Package testserver starts a real Wharf control plane (embedded etcd,
// API server, controllers) inside a test, on a free loopback port, and
// finds the real kubectl binaries for end-to-end checks.
package testserver

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/controlplane"
)

// Server is a control plane owned by one test.
type Server struct {
	*controlplane.Server
	Client  kubernetes.Interface
	DataDir string
}

// Start runs a control plane until the test ends. Options may adjust the
// defaults (data dir in t.TempDir(), 127.0.0.1:0, no fsync).
func Start(t testing.TB, opts ...func(*controlplane.Options)) *Server {
	t.Helper()
	o := controlplane.Options{
		DataDir:       t.TempDir(),
		Listen:        "127.0.0.1:0",
		UnsafeNoFsync: true,
		Logger:        Logger(t),
	}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := controlplane.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() { cancel(); s.Stop() })
	client, err := kubernetes.NewForConfig(s.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Server: s, Client: client, DataDir: o.DataDir}
}

// Service is an option of Start: the control plane runs in service mode
// (wharf.dev/v1 served) with no cluster controller, so a test plays the
// controller's part through the API.
func Service(o *controlplane.Options) {
	o.Service = true
}

// Logger logs to the test's output when WHARF_TEST_LOG is set, else nowhere.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("WHARF_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
