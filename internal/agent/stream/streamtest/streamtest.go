// Package streamtest fakes a container runtime for tests of the agent's
// stream server and of the API server's proxy to it: CRI calls are
// answered by cri-api's fake runtime, and Exec and Attach hand out URLs of
// a streaming server of this package that speaks SPDY like containerd's,
// running a few fake commands:
//
//	exit N        exits with status N
//	echo ARGS...  prints ARGS to stdout
//	cat           copies stdin to stdout
//	tty-size      prints the first terminal size the client sends, "WxH"
//
// "sh -c CMD" runs CMD as one of those. Attach prints "attached" and
// copies stdin to stdout.
package streamtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Runtime is a fake CRI runtime service with a working streaming server.
type Runtime struct {
	*critesting.FakeRuntimeService
	streams *httptest.Server

	mu      sync.Mutex
	next    int
	pending map[string]any // one-time tokens: *ExecRequest or *AttachRequest
}

// NewRuntime returns a runtime whose streaming server stops with the test.
func NewRuntime(t testing.TB) *Runtime {
	r := &Runtime{FakeRuntimeService: critesting.NewFakeRuntimeService(), pending: map[string]any{}}
	r.streams = httptest.NewServer(http.HandlerFunc(r.serveStream))
	t.Cleanup(r.streams.Close)
	return r
}

// Container describes a fake container.
type Container struct {
	Namespace, Pod, UID, Name string
	Attempt                   uint32
	Running                   bool
	LogPath                   string
}

// AddContainer adds a container labelled as the kubelet labels them and
// returns its ID.
func (r *Runtime) AddContainer(c Container) string {
	id := fmt.Sprintf("%s-%s-%s-%d", c.Pod, c.UID, c.Name, c.Attempt)
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	if c.Running {
		state = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	r.Lock()
	defer r.Unlock()
	r.Containers[id] = &critesting.FakeContainer{SandboxID: "sandbox-" + c.UID, ContainerStatus: runtimeapi.ContainerStatus{
		Id:        id,
		Metadata:  &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt},
		State:     state,
		CreatedAt: time.Now().UnixNano(),
		LogPath:   c.LogPath,
		Labels: map[string]string{
			"io.kubernetes.pod.namespace":  c.Namespace,
			"io.kubernetes.pod.name":       c.Pod,
			"io.kubernetes.pod.uid":        c.UID,
			"io.kubernetes.container.name": c.Name,
		},
	}}
	return id
}

// Exec returns a streaming URL for the request, as containerd does.
func (r *Runtime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return &runtimeapi.ExecResponse{Url: r.url("exec", req)}, nil
}

// Attach returns a streaming URL for the request.
func (r *Runtime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return &runtimeapi.AttachResponse{Url: r.url("attach", req)}, nil
}

func (r *Runtime) url(kind string, req any) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	token := strconv.Itoa(r.next)
	r.pending[token] = req
	return r.streams.URL + "/" + kind + "/" + token
}

func (r *Runtime) serveStream(w http.ResponseWriter, req *http.Request) {
	token := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	r.mu.Lock()
	pending := r.pending[token]
	delete(r.pending, token)
	r.mu.Unlock()
	const idle, create = time.Minute, 30 * time.Second
	switch p := pending.(type) {
	case *runtimeapi.ExecRequest:
		opts := &remotecommand.Options{Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr, TTY: p.Tty}
		remotecommand.ServeExec(w, req, executor{}, "", "", p.ContainerId, p.Cmd, opts, idle, create, remotecommand.SupportedStreamingProtocols)
	case *runtimeapi.AttachRequest:
		opts := &remotecommand.Options{Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr, TTY: p.Tty}
		remotecommand.ServeAttach(w, req, executor{}, "", "", p.ContainerId, opts, idle, create, remotecommand.SupportedStreamingProtocols)
	default:
		http.NotFound(w, req)
	}
}

// executor runs the fake commands.
type executor struct{}

func (executor) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, _ io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(cmd) == 3 && cmd[0] == "sh" && cmd[1] == "-c" {
		cmd = strings.Fields(cmd[2])
	}
	if len(cmd) == 0 {
		return fmt.Errorf("no command")
	}
	switch cmd[0] {
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		if code == 0 {
			return nil
		}
		return utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code}
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(cmd[1:], " "))
		return err
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "tty-size":
		s, ok := <-resize
		if !ok {
			return fmt.Errorf("no terminal size")
		}
		_, err := fmt.Fprintf(out, "%dx%d\n", s.Width, s.Height)
		return err
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("%s: not found", cmd[0]), Code: 127}
}

func (executor) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	fmt.Fprintln(out, "attached")
	if in == nil {
		return nil
	}
	_, err := io.Copy(out, in)
	return err
}
