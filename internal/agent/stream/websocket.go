package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// v5Protocol is the WebSocket subprotocol kubectl 1.30+ asks for first.
// cri-streaming's server speaks WebSocket only up to v4 (kube-apiserver
// translates v5 to SPDY for kubelets); serving v5 here lets the API server
// pass the client's WebSocket straight through. v5 is v4 plus a "close"
// signal that half-closes stdin, which wsstream handles.
const v5Protocol = "v5.channel.k8s.io"

// Channels of the channel.k8s.io protocols.
const (
	chanStdin = iota
	chanStdout
	chanStderr
	chanError
	chanResize
)

// streamFunc runs an exec or attach on the given streams (nil: not asked for).
type streamFunc func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error

// serveWebSocketV5 serves an exec or attach over WebSocket v5.
func serveWebSocketV5(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options, idle time.Duration, run streamFunc) error {
	channel := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		chanStdin:  channel(opts.Stdin, wsstream.ReadChannel),
		chanStdout: channel(opts.Stdout, wsstream.WriteChannel),
		chanStderr: channel(opts.Stderr, wsstream.WriteChannel),
		chanError:  wsstream.WriteChannel,
		chanResize: wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{v5Protocol: {Binary: true, Channels: channels}})
	conn.SetIdleTimeout(idle)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		return fmt.Errorf("websocket upgrade: %w", err) // already answered
	}
	defer conn.Close()
	// An empty write on the lowest writable channel tells the client the
	// streams are ready, as the kubelet's server does.
	switch {
	case opts.Stdout:
		streams[chanStdout].Write(nil)
	case opts.Stderr:
		streams[chanStderr].Write(nil)
	default:
		streams[chanError].Write(nil)
	}
	var in io.Reader
	var out, errOut io.WriteCloser
	if opts.Stdin {
		in = streams[chanStdin]
	}
	if opts.Stdout {
		out = streams[chanStdout]
	}
	if opts.Stderr {
		errOut = streams[chanStderr]
	}
	ctx := r.Context()
	var resize chan remotecommand.TerminalSize
	if opts.TTY {
		resize = make(chan remotecommand.TerminalSize)
		go decodeResizes(ctx, streams[chanResize], resize)
	}
	runErr := run(ctx, in, out, errOut, resize)
	data, _ := json.Marshal(exitStatus(runErr))
	// Closing the connection next (deferred) ends the session: the client
	// waits for that. wsstream's reader then logs a harmless "use of
	// closed network connection".
	_, err = streams[chanError].Write(data)
	return err
}

// decodeResizes reads the client's terminal sizes (JSON, one per message)
// until the stream ends.
func decodeResizes(ctx context.Context, r io.Reader, ch chan<- remotecommand.TerminalSize) {
	defer close(ch)
	dec := json.NewDecoder(r)
	for {
		var size remotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case ch <- size:
		case <-ctx.Done():
			return
		}
	}
}

// exitStatus is what the error channel carries at the end: success, the
// exit code of a command that failed, or why the stream broke.
func exitStatus(err error) *metav1.Status {
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return &metav1.Status{Status: metav1.StatusSuccess}
	case errors.As(err, &exit) && exit.Exited():
		return &metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exit),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exit.ExitStatus()),
			}}},
		}
	}
	return &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Code: http.StatusInternalServerError,
		Message: err.Error()}
}
