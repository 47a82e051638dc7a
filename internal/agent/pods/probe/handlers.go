package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
)

// The network handlers (httpGet, tcpSocket, grpc) act from the agent on
// the pod's IP; lifecycle hooks reuse them.

// Hook runs a postStart or preStop handler against t, giving up after
// timeout. It returns the handler's output for the event the caller
// records on failure.
func (r *Runner) Hook(ctx context.Context, h *v1.LifecycleHandler, t Target, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.Exec != nil:
		return r.exec(ctx, t.ContainerID, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		return httpGet(ctx, h.HTTPGet, t, timeout)
	case h.Sleep != nil:
		timer := r.Clock.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer timer.Stop()
		select {
		case <-timer.C():
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	case h.TCPSocket != nil:
		// Deprecated and never run by the kubelet either.
		return "", nil
	}
	return "", errors.New("lifecycle hook has no handler")
}

func httpGet(ctx context.Context, h *v1.HTTPGetAction, t Target, timeout time.Duration) (string, error) {
	port, err := resolvePort(h.Port, t.Container)
	if err != nil {
		return "", err
	}
	host := h.Host
	if host == "" {
		host = t.PodIP
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	if ref, err := url.Parse(path); err == nil {
		u = u.ResolveReference(ref)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes never verify, like the kubelet's
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		// Redirects within the host are followed; one elsewhere counts as
		// success, as for the kubelet.
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Hostname() != u.Hostname() || len(via) >= 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return string(body), nil
	}
	return string(body), fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

func tcpSocket(ctx context.Context, h *v1.TCPSocketAction, t Target) error {
	port, err := resolvePort(h.Port, t.Container)
	if err != nil {
		return err
	}
	host := h.Host
	if host == "" {
		host = t.PodIP
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// grpcCheck asks the standard gRPC health service of the pod, in plain
// text as the kubelet does.
func grpcCheck(ctx context.Context, g *v1.GRPCAction, t Target) error {
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(userAgent))
	if err != nil {
		return fmt.Errorf("gRPC probe %s: %w", addr, err)
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("gRPC probe %s: %w", addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus())
	}
	return nil
}
