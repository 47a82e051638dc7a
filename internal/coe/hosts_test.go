package coe

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/provider"
)

// What runs on the fake provider's hosts in these tests: a master gets a
// real control plane in this process, a worker a simulated agent
// (simagent_test.go) that joins it with the join token like the real one.
// Each test's hosts have loopback addresses of their own (127.77.<n>.x),
// so a cluster's API is at the address and port the controller computes.
//
// A master's control plane listens on 127.0.0.1 on a free port, and a
// small TCP proxy serves the host's $(HOST_IP):<port> from --listen (TLS
// passes through it untouched): a power cut then cuts every connection at
// once, where stopping the server gracefully would wait for watches.

// hostRuntime starts hosts' processes (it is a fake.Runtime).
type hostRuntime struct {
	log *slog.Logger
	// gate, when set, holds every worker's start until it is closed (or
	// the CreateHost gives up): a test stops the service mid-create.
	gate chan struct{}
	// broken names hosts whose process starts but never works: a master
	// whose API never answers, a worker that never registers.
	broken map[string]bool
	// grace is the clusters' node grace period.
	grace time.Duration
	mu    sync.Mutex
}

func (r *hostRuntime) setGate(ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = ch
}

func (r *hostRuntime) isBroken(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broken[name]
}

func (r *hostRuntime) Start(ctx context.Context, h provider.Host, spec provider.HostSpec) (func(), error) {
	if r.isBroken(h.Name) {
		return func() {}, nil
	}
	if len(spec.Args) == 0 {
		return nil, errors.New("no command")
	}
	switch spec.Args[0] {
	case "server":
		return r.startMaster(h, spec.Args[1:])
	case "agent":
		r.mu.Lock()
		gate := r.gate
		r.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return startAgent(r.log.With("host", h.Name), spec.Args[1:])
	}
	return nil, fmt.Errorf("unknown command %q", spec.Args[0])
}

// startMaster runs `wharf server` with its flags, in this process.
func (r *hostRuntime) startMaster(h provider.Host, args []string) (func(), error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", "", "")
	listen := fs.String("listen", "", "")
	advertise := fs.String("advertise-address", "", "")
	pods := fs.String("cluster-cidr", "", "")
	services := fs.String("service-cidr", "", "")
	restoreFrom := fs.String("restore-from", "", "")
	restoreSHA := fs.String("restore-sha256", "", "")
	var lbPool []string
	fs.Func("lb-cidr", "", func(v string) error { lbPool = append(lbPool, v); return nil })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	s, err := controlplane.Start(context.Background(), controlplane.Options{
		Logger:           r.log.With("host", h.Name),
		DataDir:          *dataDir,
		Listen:           "127.0.0.1:0",
		AdvertiseAddress: *advertise,
		ClusterCIDR:      *pods,
		ServiceCIDR:      *services,
		LoadBalancerPool: lbPool,
		NodeGracePeriod:  r.grace,
		EvictionTimeout:  time.Second,
		UnsafeNoFsync:    true,
		RestoreFrom:      *restoreFrom,
		RestoreSHA256:    *restoreSHA,
	})
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(s.URL)
	stopProxy, err := proxy(*listen, net.JoinHostPort("127.0.0.1", u.Port()))
	if err != nil {
		s.Stop()
		return nil, err
	}
	return func() { stopProxy(); s.Stop() }, nil
}

// proxy forwards connections to listen on to target until stopped; stop
// also cuts the connections, as a power cut would.
func proxy(listen, target string) (func(), error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			track(in, true)
			track(out, true)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				track(dst, false)
				track(src, false)
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	})
	return func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	}, nil
}
