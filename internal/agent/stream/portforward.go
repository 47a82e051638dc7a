package stream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

// criForwarder forwards one connection to a port of a pod through CRI:
// PortForward gives a URL of the runtime's streaming server, which speaks
// SPDY portforward.k8s.io. It is the PortForwarder of cri-streaming's
// port forwarding server; the uid argument is the CRI sandbox ID.
type criForwarder struct {
	rt        Runtime
	requestID atomic.Int64
}

var _ portforward.PortForwarder = (*criForwarder)(nil)

// PortForward copies between stream and port of the sandbox.
func (f *criForwarder) PortForward(ctx context.Context, _, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	resp, err := f.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sandboxID, Port: []int32{port}})
	if err != nil {
		return fmt.Errorf("port forward to sandbox %s: %w", sandboxID, err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		return fmt.Errorf("runtime's streaming URL %q: %w", resp.Url, err)
	}
	rt, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		return err
	}
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.ProtocolV1Name)
	if err != nil {
		return fmt.Errorf("connect to runtime's port forwarding: %w", err)
	}
	defer conn.Close()

	// Each forwarded connection is an error stream and a data stream with
	// the same port and request ID.
	h := http.Header{}
	h.Set(portforward.PortHeader, strconv.Itoa(int(port)))
	h.Set(portforward.PortForwardRequestIDHeader, strconv.FormatInt(f.requestID.Add(1), 10))
	h.Set(portforward.StreamType, portforward.StreamTypeError)
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("port forward error stream: %w", err)
	}
	errStream.Close() // nothing to send on it
	errc := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(errStream)
		switch {
		case err != nil:
			errc <- fmt.Errorf("port forward error stream: %w", err)
		case len(msg) > 0:
			errc <- fmt.Errorf("port %d: %s", port, msg)
		default:
			errc <- nil
		}
	}()
	h.Set(portforward.StreamType, portforward.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return fmt.Errorf("port forward data stream: %w", err)
	}
	go func() {
		io.Copy(data, stream)
		data.Close() // half-close: the client sent everything
	}()
	io.Copy(stream, data)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}
