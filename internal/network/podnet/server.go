// Package podnet is the node's pod network, in the agent: what the CNI
// bridge, host-local and portmap plugins did in three processes per pod,
// done in-process with netlink. containerd executes wharf-cni (package
// cniplugin) for each sandbox, which forwards the request to the Server's
// unix socket.
//
// A pod gets a veth pair whose host end is a port of the node's bridge
// (hairpin on) and whose other end is eth0 in the sandbox, with an
// address from the node's pod CIDR and a default route via the bridge's
// address (the CIDR's first); its hostPorts become DNAT rules (package
// cni). Allocations are files in the data dir, so an agent restart keeps
// them; ones whose sandbox containerd no longer has (their DEL came while
// no agent listened) are collected.
package podnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/cniplugin"
)

// Config says how a Server runs.
type Config struct {
	// DataDir keeps one file per allocated address.
	DataDir string
	// Bridge defaults to cni.DefaultBridge.
	Bridge string
	// MTU of the bridge and the pods' interfaces; 0 keeps the default.
	MTU int
	// ServiceCIDR, if valid, is routed to the bridge, so that the node's
	// own connections to service addresses reach the service proxy.
	ServiceCIDR netip.Prefix
	// HostNetNS is the node's network namespace (a path); empty: this
	// process's. Tests run a node in a namespace of their own.
	HostNetNS string
	// Sandboxes lists the IDs of every sandbox the runtime has, in any
	// state; allocations of others are collected. Nil: never collected.
	Sandboxes func(ctx context.Context) (map[string]bool, error)
	// CollectAge spares younger allocations (default a minute):
	// containerd lists a sandbox only once RunPodSandbox, which makes the
	// ADD, has returned.
	CollectAge time.Duration
	Logger     *slog.Logger
}

// Server serves the pod network of one node.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	podCIDR   netip.Prefix // invalid until Configure
	ipam      *ipam
	bridgeMAC string
	// portsDirty: the hostPort chains may not match the allocations;
	// portsWritten: they may hold rules (none are made before a pod has
	// a hostPort).
	portsDirty, portsWritten bool
}

// New returns a Server for cfg; Configure gives it the pod CIDR, Serve
// answers the plugin.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("pod network: Config needs DataDir")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = cni.DefaultBridge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CollectAge <= 0 {
		cfg.CollectAge = time.Minute
	}
	return &Server{cfg: cfg, log: cfg.Logger}, nil
}

// Configure sets the node's pod CIDR up: the bridge with the gateway
// address, forwarding, the allocations kept on disk and their hostPorts.
// Calling it again with the same CIDR checks the bridge again.
func (s *Server) Configure(ctx context.Context, podCIDR string) error {
	prefix, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		return fmt.Errorf("pod network: pod CIDR: %w", err)
	}
	prefix = prefix.Masked()
	if prefix.Bits() > prefix.Addr().BitLen()-2 {
		return fmt.Errorf("pod network: pod CIDR %s is too small", prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil || s.podCIDR != prefix {
		a, errs := loadIPAM(s.cfg.DataDir, prefix)
		for _, err := range errs {
			s.log.Warn("pod network state", "err", err)
		}
		s.ipam, s.podCIDR = a, prefix
		s.portsDirty, s.portsWritten = true, hasPorts(a.all())
		s.log.Info("pod network configured", "podCIDR", prefix, "bridge", s.cfg.Bridge, "allocations", len(a.byIP))
	}
	mac, err := s.ensureBridge()
	if err != nil {
		return err
	}
	s.bridgeMAC = mac
	return s.syncPortsLocked(ctx)
}

// Listen makes the socket the plugin calls (replacing a previous agent's),
// for Serve.
func Listen(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, err
	}
	os.Remove(socket)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers the plugin's requests on ln (see Listen) until ctx ends,
// and collects allocations whose sandbox is gone.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go s.collectLoop(ctx)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pod network: %w", err)
		}
		go s.serveConn(ctx, conn)
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	var req cniplugin.Request
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		s.log.Warn("pod network: bad request", "err", err)
		return
	}
	resp := s.Handle(ctx, req)
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		s.log.Warn("pod network: answer", "command", req.Command, "container", req.ContainerID, "err", err)
	}
}

// Handle carries out one CNI request.
func (s *Server) Handle(ctx context.Context, req cniplugin.Request) cniplugin.Response {
	var conf cniplugin.NetConf
	if err := json.Unmarshal(req.Config, &conf); err != nil {
		return errorResponse(conf, cniplugin.CodeDecodingFailure, "decode network configuration", err)
	}
	start := time.Now()
	var result []byte
	var err error
	switch req.Command {
	case "ADD":
		result, err = s.add(ctx, req, conf)
	case "DEL":
		err = s.del(ctx, req)
	case "CHECK":
		err = s.check(req)
	default:
		err = fmt.Errorf("command %q not supported", req.Command)
	}
	log := s.log.With("command", req.Command, "container", short(req.ContainerID), "pod", podOf(req.Args), "duration", time.Since(start).Round(time.Microsecond))
	if err != nil {
		log.Warn("pod network request failed", "err", err)
		return errorResponse(conf, cniplugin.CodeAgent, req.Command+" "+short(req.ContainerID), err)
	}
	log.Debug("pod network request")
	return cniplugin.Response{Result: result}
}

func errorResponse(conf cniplugin.NetConf, code uint, msg string, err error) cniplugin.Response {
	return cniplugin.Response{Error: &cniplugin.Error{CNIVersion: conf.CNIVersion, Code: code, Msg: msg, Details: err.Error()}}
}

// podOf is namespace/name from the CNI_ARGS containerd passes
// (K8S_POD_NAMESPACE=…;K8S_POD_NAME=…).
func podOf(args string) string {
	var ns, name string
	for _, kv := range strings.Split(args, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			ns = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	if name == "" {
		return ""
	}
	return ns + "/" + name
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
