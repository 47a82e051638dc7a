// Package probe runs containers' startup, liveness and readiness probes and
// lifecycle hooks for the pod workers, with the kubelet's semantics:
// httpGet from the agent to the pod's IP (2xx and 3xx succeed), tcpSocket,
// exec through CRI ExecSync, and gRPC health checks; initial delay, period,
// timeout and success/failure thresholds; liveness and readiness wait for
// the startup probe to succeed.
package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"
)

// Result is a probe's verdict.
type Result int8

// The verdicts. Unknown is the startup probe's value until it has run.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	return [...]string{"unknown", "success", "failure"}[r]
}

// userAgent is what the kubelet sends; some applications recognise it.
const userAgent = "kube-probe/1.33"

// maxBody bounds how much of a response is kept as the probe's output.
const maxBody = 10 * 1024

// ExecFunc runs cmd in a container (CRI ExecSync). A command that ran and
// exited non-zero is reported with an error that has an ExitStatus() int
// method, as k8s.io/utils/exec's ExitError does.
type ExecFunc func(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)

// Target is what a probe or hook acts on.
type Target struct {
	PodIP       string
	ContainerID string
	Container   *v1.Container
}

// Runner runs single probes and hooks.
type Runner struct {
	Exec ExecFunc
	// Clock times sleep hooks.
	Clock clock.WithTicker
}

// Probe runs p once against t and returns the verdict and the output
// worth reporting.
func (r *Runner) Probe(ctx context.Context, p *v1.Probe, t Target) (Result, string) {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	var out string
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		out, err = r.exec(ctx, t.ContainerID, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		out, err = httpGet(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		err = tcpSocket(ctx, h.TCPSocket, t)
	case h.GRPC != nil:
		err = grpcCheck(ctx, h.GRPC, t)
	default:
		return Unknown, "missing probe handler"
	}
	if err != nil {
		if out == "" {
			return Failure, err.Error()
		}
		return Failure, fmt.Sprintf("%v: %s", err, out)
	}
	return Success, out
}

func (r *Runner) exec(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (string, error) {
	stdout, stderr, err := r.Exec(ctx, containerID, cmd, timeout)
	out := strings.TrimSpace(string(stdout) + string(stderr))
	var exit interface{ ExitStatus() int }
	if errors.As(err, &exit) {
		return out, fmt.Errorf("command %q exited with %d", strings.Join(cmd, " "), exit.ExitStatus())
	}
	if err != nil {
		return out, fmt.Errorf("command %q: %w", strings.Join(cmd, " "), err)
	}
	return out, nil
}

// resolvePort turns a named port into the container's number.
func resolvePort(port intstr.IntOrString, c *v1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	if c != nil {
		for _, p := range c.Ports {
			if p.Name == port.StrVal {
				return int(p.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port %q in container", port.StrVal)
}
