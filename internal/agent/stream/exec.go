package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	clientexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// criStreamer runs exec and attach through CRI: the runtime answers Exec
// and Attach with a URL of its own streaming server (containerd's speaks
// SPDY), and the agent relays between its client and that URL. It is the
// Executor and Attacher of cri-streaming's remotecommand server; the
// container argument is a CRI container ID.
type criStreamer struct {
	rt Runtime
}

var (
	_ remotecommand.Executor = (*criStreamer)(nil)
	_ remotecommand.Attacher = (*criStreamer)(nil)
)

// ExecInContainer runs cmd in a container.
func (c *criStreamer) ExecInContainer(ctx context.Context, _, _, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	resp, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd, Tty: tty, Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil,
	})
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	return relay(ctx, resp.Url, in, out, errOut, tty, resize)
}

// AttachContainer attaches to a container's main process.
func (c *criStreamer) AttachContainer(ctx context.Context, _, _, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	resp, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{
		ContainerId: id, Tty: tty, Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil,
	})
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	return relay(ctx, resp.Url, in, out, errOut, tty, resize)
}

// relay streams between the client's streams and the runtime's streaming
// URL. A non-zero exit is returned as k8s.io/utils/exec's ExitError, not
// wrapped: the remotecommand server checks for exactly that type to send
// the exit code to the client.
func relay(ctx context.Context, rawURL string, in io.Reader, out, errOut io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("runtime's streaming URL %q: %w", rawURL, err)
	}
	// The runtime's stream server listens on loopback without TLS or
	// authentication: its URLs carry one-time tokens.
	exec, err := clientremotecommand.NewSPDYExecutor(&rest.Config{}, http.MethodPost, u)
	if err != nil {
		return fmt.Errorf("stream to runtime: %w", err)
	}
	opts := clientremotecommand.StreamOptions{Tty: tty}
	// Only set streams that exist: an interface holding a nil pointer
	// would ask the runtime for a stream nobody reads.
	if in != nil {
		opts.Stdin = in
	}
	if out != nil {
		opts.Stdout = out
	}
	if errOut != nil {
		opts.Stderr = errOut
	}
	if tty && resize != nil {
		opts.TerminalSizeQueue = &sizeQueue{ctx: ctx, ch: resize}
	}
	err = exec.StreamWithContext(ctx, opts)
	var exit clientexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return utilexec.CodeExitError{Err: exit, Code: exit.ExitStatus()}
	}
	return err
}

// sizeQueue passes the client's terminal resizes on to the runtime.
type sizeQueue struct {
	ctx context.Context
	ch  <-chan remotecommand.TerminalSize
}

func (q *sizeQueue) Next() *clientremotecommand.TerminalSize {
	select {
	case s, ok := <-q.ch:
		if !ok {
			return nil
		}
		return &clientremotecommand.TerminalSize{Width: s.Width, Height: s.Height}
	case <-q.ctx.Done():
		return nil
	}
}
