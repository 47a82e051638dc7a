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

// collectPeriod is how often allocations whose sandbox is gone are
// collected.
const collectPeriod = time.Minute

// Config says how a Server runs.
type Config struct {
	// DataDir keeps one file per allocated address.
	DataDir string
	// Bridge defaults to cni.DefaultBridge.
	Bridge string
	// MTU of the bridge and the pods' interfaces; 0 keeps the default.
	MTU int
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

// add gives the sandbox its interface and address, and publishes its
// hostPorts. On failure it undoes what it did.
func (s *Server) add(ctx context.Context, req cniplugin.Request, conf cniplugin.NetConf) (result []byte, err error) {
	if conf.CNIVersion != "1.0.0" {
		return nil, fmt.Errorf("CNI version %q: the pod network speaks 1.0.0", conf.CNIVersion)
	}
	al, prefix, err := s.reserve(req, conf.RuntimeConfig.PortMappings)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.forget(ctx, req.ContainerID, req.IfName)
			s.inHost(func() error { return deleteVeth(hostVeth(req.ContainerID, req.IfName)) })
		}
	}()
	gw := prefix.Addr().Next()
	var link podLink
	err = s.inHost(func() error {
		link, err = s.attach(req, netip.PrefixFrom(al.IP, prefix.Bits()), gw)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(al.Ports) > 0 {
		if err := s.syncPorts(ctx); err != nil {
			return nil, err
		}
	}
	return s.result(req, link, netip.PrefixFrom(al.IP, prefix.Bits()), gw)
}

// reserve allocates the sandbox's address (the one it has, for a repeated
// ADD).
func (s *Server) reserve(req cniplugin.Request, ports []cniplugin.PortMapping) (*allocation, netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil {
		return nil, netip.Prefix{}, errors.New("the node has no pod CIDR yet")
	}
	if al := s.ipam.find(req.ContainerID, req.IfName); al != nil {
		return al, s.podCIDR, nil
	}
	al, err := s.ipam.allocate(allocation{
		ContainerID: req.ContainerID, IfName: req.IfName, Pod: podOf(req.Args), Created: time.Now(), Ports: ports,
	})
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	if len(ports) > 0 {
		s.portsDirty = true
	}
	return al, s.podCIDR, nil
}

// del undoes add; what is already gone is fine.
func (s *Server) del(ctx context.Context, req cniplugin.Request) error {
	errs := []error{s.inHost(func() error { return deleteVeth(hostVeth(req.ContainerID, req.IfName)) })}
	errs = append(errs, s.forget(ctx, req.ContainerID, req.IfName))
	return errors.Join(errs...)
}

// forget releases a sandbox interface's address and its hostPorts.
func (s *Server) forget(ctx context.Context, containerID, ifName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil {
		return nil
	}
	al := s.ipam.find(containerID, ifName)
	if al == nil {
		return nil
	}
	if err := s.ipam.release(al); err != nil {
		return err
	}
	if len(al.Ports) > 0 {
		s.portsDirty = true
		return s.syncPortsLocked(ctx)
	}
	return nil
}

func (s *Server) check(req cniplugin.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ipam == nil || s.ipam.find(req.ContainerID, req.IfName) == nil {
		return fmt.Errorf("no address for %s", short(req.ContainerID))
	}
	return nil
}

func (s *Server) syncPorts(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncPortsLocked(ctx)
}

// syncPortsLocked rewrites the hostPort chains from the allocations if
// they changed.
func (s *Server) syncPortsLocked(ctx context.Context) error {
	if !s.portsDirty {
		return nil
	}
	var ports []cni.HostPort
	for _, al := range s.ipam.all() {
		for _, p := range al.Ports {
			hp := cni.HostPort{
				Protocol: strings.ToLower(p.Protocol), HostPort: uint16(p.HostPort), PodIP: al.IP, ContainerPort: uint16(p.ContainerPort),
			}
			if hp.Protocol == "" {
				hp.Protocol = "tcp"
			}
			if ip, err := netip.ParseAddr(p.HostIP); err == nil {
				hp.HostIP = ip
			}
			ports = append(ports, hp)
		}
	}
	if len(ports) > 0 || s.portsWritten {
		err := s.inHost(func() error {
			if len(ports) > 0 && s.podCIDR.Addr().Is4() {
				// 127.0.0.1 as a source, DNATed to a pod, must be routed out
				// of the bridge (the portmap plugin did the same).
				if err := sysctl("net/ipv4/conf/"+s.cfg.Bridge+"/route_localnet", "1"); err != nil {
					return err
				}
			}
			return cni.SyncHostPorts(ctx, s.cfg.Bridge, s.podCIDR.String(), ports)
		})
		if err != nil {
			return err
		}
		s.portsWritten = true
	}
	s.portsDirty = false
	return nil
}

func hasPorts(als []*allocation) bool {
	for _, al := range als {
		if len(al.Ports) > 0 {
			return true
		}
	}
	return false
}

// collectLoop collects now and then, from the first Configure on.
func (s *Server) collectLoop(ctx context.Context) {
	if s.cfg.Sandboxes == nil {
		return
	}
	t := time.NewTicker(collectPeriod)
	defer t.Stop()
	for {
		if err := s.Collect(ctx); err != nil {
			s.log.Warn("pod network: collecting addresses of gone sandboxes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Collect releases the allocations, older than CollectAge, of sandboxes
// the runtime does not have.
func (s *Server) Collect(ctx context.Context) error {
	s.mu.Lock()
	configured := s.ipam != nil
	s.mu.Unlock()
	if !configured || s.cfg.Sandboxes == nil {
		return nil
	}
	known, err := s.cfg.Sandboxes(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var gone []*allocation
	for _, al := range s.ipam.all() {
		if !known[al.ContainerID] && time.Since(al.Created) > s.cfg.CollectAge {
			gone = append(gone, al)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, al := range gone {
		s.log.Info("pod network: releasing the address of a gone sandbox", "ip", al.IP, "container", short(al.ContainerID), "pod", al.Pod)
		errs = append(errs, s.inHost(func() error { return deleteVeth(hostVeth(al.ContainerID, al.IfName)) }))
		errs = append(errs, s.forget(ctx, al.ContainerID, al.IfName))
	}
	return errors.Join(errs...)
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
