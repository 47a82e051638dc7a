package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, pod, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := ParseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		s.writeError(w, &badRequestError{err.Error()})
		return
	}
	c, err := findContainer(ctx, s.cfg.Runtime, ns, pod, name, opts.Previous)
	if err != nil {
		s.writeError(w, err)
		return
	}
	st, err := s.cfg.Runtime.ContainerStatus(ctx, c.Id, false)
	if err != nil {
		s.writeError(w, fmt.Errorf("status of container %s: %w", c.Id, err))
		return
	}
	path := st.GetStatus().GetLogPath()
	if _, err := os.Stat(path); err != nil {
		s.writeError(w, &notFoundError{fmt.Sprintf("log of container %q in pod %s/%s (%v)", name, ns, pod, err)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rc := http.NewResponseController(w)
	follower := pollFollower{every: s.cfg.LogPoll, running: func(ctx context.Context) bool { return running(ctx, s.cfg.Runtime, c.Id) }}
	if err := ReadLogs(ctx, path, opts, w, follower, func() { rc.Flush() }); err != nil {
		s.log.Warn("log stream ended", "pod", ns+"/"+pod, "container", name, "err", err)
	}
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	opts, err := streamOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, err)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		s.writeError(w, &badRequestError{"you must specify at least one command for the container"})
		return
	}
	c, err := s.runningContainer(r.Context(), ns, pod, r.PathValue("container"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		err := serveWebSocketV5(w, r, opts, s.cfg.IdleTimeout, func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
			return s.streamer.ExecInContainer(ctx, ns+"/"+pod, "", c.Id, cmd, in, out, errOut, opts.TTY, resize, 0)
		})
		s.logStreamEnd("exec", ns, pod, err)
		return
	}
	remotecommand.ServeExec(w, r, s.streamer, ns+"/"+pod, "", c.Id, cmd, opts, s.cfg.IdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	opts, err := streamOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, err)
		return
	}
	c, err := s.runningContainer(r.Context(), ns, pod, r.PathValue("container"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		err := serveWebSocketV5(w, r, opts, s.cfg.IdleTimeout, func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
			return s.streamer.AttachContainer(ctx, ns+"/"+pod, "", c.Id, in, out, errOut, opts.TTY, resize)
		})
		s.logStreamEnd("attach", ns, pod, err)
		return
	}
	remotecommand.ServeAttach(w, r, s.streamer, ns+"/"+pod, "", c.Id, opts, s.cfg.IdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		s.writeError(w, &badRequestError{err.Error()})
		return
	}
	sb, err := findSandbox(r.Context(), s.cfg.Runtime, ns, pod)
	if err != nil {
		s.writeError(w, err)
		return
	}
	portforward.ServePortForward(w, r, s.forwarder, ns+"/"+pod, sb.Id, opts, s.cfg.IdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// runningContainer returns the running container to exec in or attach to.
func (s *Server) runningContainer(ctx context.Context, ns, pod, name string) (*runtimeapi.Container, error) {
	c, err := findContainer(ctx, s.cfg.Runtime, ns, pod, name, false)
	if err != nil {
		return nil, err
	}
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, &badRequestError{fmt.Sprintf("container %q in pod %s/%s is not running", name, ns, pod)}
	}
	return c, nil
}

// streamOptions reads which streams an exec or attach wants. The names are
// docs/agent.md's (stdin, stdout, stderr, tty); the kubelet's (input,
// output, error) work too.
func streamOptions(q url.Values) (*remotecommand.Options, error) {
	on := func(keys ...string) bool {
		for _, k := range keys {
			if v := q.Get(k); v == "1" || v == "true" {
				return true
			}
		}
		return false
	}
	o := &remotecommand.Options{
		Stdin:  on("stdin", remotecommand.ExecStdinParam),
		Stdout: on("stdout", remotecommand.ExecStdoutParam),
		Stderr: on("stderr", remotecommand.ExecStderrParam),
		TTY:    on(remotecommand.ExecTTYParam),
	}
	if o.TTY {
		o.Stderr = false // a terminal has one output stream
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return nil, &badRequestError{"you must specify at least 1 of stdin, stdout, stderr"}
	}
	return o, nil
}

func (s *Server) logStreamEnd(what, ns, pod string, err error) {
	if err != nil {
		s.log.Warn(what+" ended", "pod", ns+"/"+pod, "err", err)
	}
}

// writeError answers with a metav1.Status, which the API server passes on
// to kubectl as is.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Message: err.Error()}
	var nf *notFoundError
	var br *badRequestError
	switch {
	case errors.As(err, &nf):
		st.Code, st.Reason = http.StatusNotFound, metav1.StatusReasonNotFound
	case errors.As(err, &br):
		st.Code, st.Reason = http.StatusBadRequest, metav1.StatusReasonBadRequest
	default:
		st.Code, st.Reason = http.StatusInternalServerError, metav1.StatusReasonInternalError
		s.log.Error("request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(&st)
}
