// Package cri is the agent's CRI v1 client: it talks gRPC over containerd's
// unix socket and implements k8s.io/cri-api's RuntimeService and
// ImageManagerService, so the agent's pod workers can run against it or
// against cri-api's fakes alike.
//
// containerd restarts under the agent (it is restarted when it dies, and
// replaced when its config changes). The client survives that: gRPC
// reconnects by itself, calls made while containerd is down fail at once
// with an error matching ErrUnavailable instead of waiting, and every call
// has a deadline so a stuck containerd cannot hang a pod worker for long.
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var (
	_ internalapi.RuntimeService      = (*Client)(nil)
	_ internalapi.ImageManagerService = (*Client)(nil)
)

// Sentinel kinds of CRI errors, for errors.Is. The gRPC status stays in
// the chain too (status.Code works on returned errors).
var (
	// ErrNotFound: the sandbox, container or image does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: containerd is not answering (down or restarting).
	ErrUnavailable = errors.New("container runtime unavailable")
)

// maxMsgSize is kubelet's limit: a ListContainers answer on a busy node
// is larger than gRPC's default 4 MiB.
const maxMsgSize = 16 << 20

// Client is a CRI client of one containerd. It is safe for concurrent use.
type Client struct {
	socket  string
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
	opts    options
}

type options struct {
	logger       *slog.Logger
	timeout      time.Duration
	queryTimeout time.Duration
	pullTimeout  time.Duration
}

// Option configures Dial.
type Option func(*options)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTimeout bounds calls that change state (default 2 min, kubelet's
// --runtime-request-timeout). StopContainer and ExecSync add their own
// timeouts to it.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithQueryTimeout bounds calls that only read (status, list, version,
// stats; default 15 s): a stuck runtime shows up quickly there.
func WithQueryTimeout(d time.Duration) Option { return func(o *options) { o.queryTimeout = d } }

// WithPullTimeout bounds PullImage (default 15 min).
func WithPullTimeout(d time.Duration) Option { return func(o *options) { o.pullTimeout = d } }

// Dial connects to the CRI socket and checks that the runtime answers
// Version before ctx ends.
func Dial(ctx context.Context, socket string, opts ...Option) (*Client, error) {
	o := options{
		logger:       slog.Default(),
		timeout:      2 * time.Minute,
		queryTimeout: 15 * time.Second,
		pullTimeout:  15 * time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
		// A restarted containerd is back within a second: do not let
		// gRPC's backoff (up to 2 min by default) keep the client away.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cri %s: %w", socket, err)
	}
	c := &Client{
		socket:  socket,
		conn:    conn,
		runtime: runtimeapi.NewRuntimeServiceClient(conn),
		images:  runtimeapi.NewImageServiceClient(conn),
		opts:    o,
	}
	// Version checks both the connection and that the CRI plugin is
	// there (containerd with a bad config runs without it).
	v, err := c.Version(ctx, "")
	if err != nil {
		conn.Close()
		return nil, err
	}
	o.logger.Debug("connected to CRI", "socket", socket, "runtime", v.RuntimeName, "version", v.RuntimeVersion)
	return c, nil
}

// Socket is the socket the client talks to.
func (c *Client) Socket() string { return c.socket }

// Close closes the connection.
func (c *Client) Close(context.Context) error { return c.conn.Close() }

// withTimeout returns ctx bounded by d (d <= 0: not bounded).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// wrap turns a gRPC error into one that says what failed and matches the
// sentinels. what names the object and the call, e.g. `pod sandbox "x": stop`.
func (c *Client) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	code := status.Code(err)
	// While it starts, containerd's CRI plugin answers every call with
	// Unknown "server is not initialized yet": that is unavailable too.
	if code == codes.Unknown && strings.Contains(status.Convert(err).Message(), "not initialized yet") {
		code = codes.Unavailable
	}
	switch code {
	case codes.NotFound:
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	case codes.Unavailable:
		// Make the next call try to connect at once rather than wait
		// out the reconnect backoff.
		c.conn.ResetConnectBackoff()
		return fmt.Errorf("%s: %w at %s: %w", what, ErrUnavailable, c.socket, err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer from %s in time: %w", what, c.socket, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Version returns the runtime's name and version.
func (c *Client) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{Version: apiVersion})
	if err != nil {
		return nil, c.wrap(err, "cri version")
	}
	return resp, nil
}

// Status returns the runtime's conditions (RuntimeReady, NetworkReady).
func (c *Client) Status(ctx context.Context, verbose bool) (*runtimeapi.StatusResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: verbose})
	if err != nil {
		return nil, c.wrap(err, "runtime status")
	}
	return resp, nil
}

// UpdateRuntimeConfig passes the pod CIDR to the runtime.
func (c *Client) UpdateRuntimeConfig(ctx context.Context, cfg *runtimeapi.RuntimeConfig) error {
	ctx, cancel := withTimeout(ctx, c.opts.timeout)
	defer cancel()
	_, err := c.runtime.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: cfg})
	return c.wrap(err, "update runtime config")
}

// RuntimeConfig returns the runtime's configuration (cgroup driver; not in
// containerd 1.6, which returns Unimplemented).
func (c *Client) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	ctx, cancel := withTimeout(ctx, c.opts.queryTimeout)
	defer cancel()
	resp, err := c.runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		return nil, c.wrap(err, "runtime config")
	}
	return resp, nil
}
