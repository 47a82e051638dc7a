package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"wharf.dev/wharf/internal/testwait"
)

// fakeRuntime answers a few calls the way containerd does.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1", RuntimeApiVersion: "v1"}, nil
}

func (fakeRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.ContainerId)
}

func (fakeRuntime) ExecSync(_ context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	return &runtimeapi.ExecSyncResponse{Stdout: []byte("out"), Stderr: []byte("err"), ExitCode: 3}, nil
}

// serve runs the fake on socket until stop is called.
func serve(t *testing.T, socket string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, fakeRuntime{})
	go srv.Serve(ln)
	return srv.Stop
}

func TestErrorsMatchSentinelsAndKeepStatus(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	defer serve(t, socket)()
	c, err := Dial(context.Background(), socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	_, err = c.ContainerStatus(context.Background(), "abc", false)
	if !errors.Is(err, ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStatus of a missing container: %v (code %v), want ErrNotFound with code NotFound", err, status.Code(err))
	}
	_, err = c.ImageFsInfo(context.Background())
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unimplemented call: %v, want code Unimplemented", err)
	}

	stdout, stderr, err := c.ExecSync(context.Background(), "abc", []string{"false"}, time.Second)
	var exit utilexec.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 3 || string(stdout) != "out" || string(stderr) != "err" {
		t.Errorf("ExecSync = %q, %q, %v: want the output and an ExitError with code 3", stdout, stderr, err)
	}
}

// TestRuntimeRestart: while the runtime is down calls fail at once with
// ErrUnavailable (not after a timeout), and once it is back the same
// client works again without being redialled.
func TestRuntimeRestart(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	stop := serve(t, socket)
	c, err := Dial(context.Background(), socket)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	stop() // removes the socket file too
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The first call sees the broken connection, the next ones a
	// reconnect that fails.
	for i := 0; i < 3; i++ {
		began := time.Now()
		_, err = c.Version(ctx, "")
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Version with the runtime down: %v, want ErrUnavailable", err)
		}
		t.Logf("failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
	}

	defer serve(t, socket)()
	began := time.Now()
	testwait.For(t, "the client to work again", func() (bool, string) {
		_, err := c.Version(ctx, "")
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Version while the runtime comes back: %v", err)
		}
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("client back %v after the runtime", time.Since(began).Round(time.Millisecond))
}

func TestDialFailsWithoutRuntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Dial(ctx, filepath.Join(t.TempDir(), "none.sock"))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Dial to no socket: %v, want ErrUnavailable", err)
	}
}
