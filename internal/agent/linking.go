package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/agent/pods"
	"wharf.dev/wharf/internal/agent/services"
	"wharf.dev/wharf/internal/agent/speaker"
	"wharf.dev/wharf/internal/network/clusterdns"
	"wharf.dev/wharf/internal/network/proxy"
	"wharf.dev/wharf/internal/nodehost"
	"wharf.dev/wharf/internal/wire"
)

// The node links its pods to services as kube-proxy and a node-local DNS
// cache do for a kubelet, in the agent: a service proxy on an nftables
// table of the node's own and a DNS server at the pods' gateway address,
// both fed by one watch of services and endpoint slices.

// serviceTable names the node's nftables table: one per agent state dir,
// so agents sharing a namespace (two `wharf up` on one machine) each keep
// their own.
func serviceTable(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return "wharf-svc-" + hex.EncodeToString(sum[:4])
}

// linking is the node's DNS and the watch feeding it and the service
// proxy (which the watch syncs).
type linking struct {
	dns     *nodeDNS
	watcher *services.Watcher
	proxy   *proxy.Proxy
	// speaker holds the node's share of the load balancer addresses; nil
	// without an IPv4 node address.
	speaker *speaker.Speaker
	ingress *nodeIngress
}

// runServices runs the watch, which syncs the proxy, until ctx is done,
// then stops the proxy's health check servers.
func (l *linking) runServices(ctx context.Context) error {
	err := l.watcher.Run(ctx)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, l.proxy.Close(cctx))
}

func newLinking(cfg Config, client kubernetes.Interface, caPEM []byte, log *slog.Logger) (*linking, error) {
	// Node ports answer on the node's address (the InternalIP), but a
	// loopback one (`wharf up`'s): the kernel routes no DNAT from
	// 127.0.0.0/8 to a pod without route_localnet, which kube-proxy's
	// users know as a hole (CVE-2020-8558).
	var nodeIPs []netip.Addr
	switch a, err := netip.ParseAddr(cfg.NodeIP); {
	case err == nil && a.Is4() && !a.IsLoopback():
		nodeIPs = append(nodeIPs, a)
	default:
		log.Info("node ports not served: the node's address is not a routable IPv4 address", "nodeIP", cfg.NodeIP)
	}
	px, err := proxy.New(proxy.Config{
		Table: serviceTable(cfg.StateDir), NodeName: cfg.NodeName,
		ClusterCIDR: netip.MustParsePrefix(cfg.ClusterCIDR).Masked(), NodeIPs: nodeIPs,
		ServeHealthChecks: true, Logger: log.With("component", "proxy"),
	})
	if err != nil {
		return nil, fmt.Errorf("service proxy: %w", err)
	}
	upstreams, err := resolvers(cfg.ResolvConf)
	if err != nil {
		log.Warn("no upstream resolvers for names outside the cluster", "resolvConf", cfg.ResolvConf, "err", err)
	}
	srv, err := clusterdns.New(clusterdns.Config{Domain: cfg.ClusterDomain, Upstreams: upstreams, Logger: log.With("component", "dns")})
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	l := &linking{dns: &nodeDNS{server: srv, log: log.With("component", "dns"), conns: make(chan dnsConns, 1)}, proxy: px,
		ingress: newNodeIngress(cfg, client, log.With("component", "ingress"))}
	sinks := []services.Sink{px, srv, l.ingress.proxy}
	a, err := netip.ParseAddr(cfg.NodeIP)
	if cfg.LoadBalancerLocal {
		a, err = netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	if err == nil && a.Is4() {
		// Heartbeats of one cluster only: its agents share its CA.
		cluster, _ := wire.CAHash(caPEM)
		l.speaker = speaker.New(speaker.Config{
			Client: client, NodeName: cfg.NodeName, NodeIP: a, Cluster: cluster,
			StateFile: filepath.Join(cfg.StateDir, nodehost.LoadBalancerFile), Logger: log.With("component", "speaker"),
		})
		sinks = append(sinks, l.speaker)
	} else {
		log.Info("load balancer addresses not held here: the node's address is not IPv4", "nodeIP", cfg.NodeIP)
	}
	l.watcher = services.New(services.Config{Client: client, Sinks: sinks, Sync: px.Sync, Logger: log.With("component", "services")})
	l.ingress.services = l.watcher.Synced()
	return l, nil
}

// runSpeaker holds the node's load balancer addresses until ctx is done.
func (l *linking) runSpeaker(ctx context.Context) error {
	if l.speaker == nil {
		<-ctx.Done()
		return nil
	}
	return l.speaker.Run(ctx)
}

// resolvers are the nameservers of the node's resolv.conf (the one pods
// with dnsPolicy Default get), as ip:53.
func resolvers(path string) ([]string, error) {
	rc, err := pods.ReadResolvConf(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range rc.Servers {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(ip, 53).String())
		}
	}
	return out, nil
}

// nodeDNS serves the cluster DNS at the pods' gateway address, port 53,
// once the node has a pod CIDR: Listen binds (from the network set-up,
// before containerd may start a pod), Run serves.
type nodeDNS struct {
	server *clusterdns.Server
	log    *slog.Logger
	conns  chan dnsConns

	mu   sync.Mutex
	addr netip.Addr // where it listens; invalid before Listen
}

type dnsConns struct {
	udp net.PacketConn
	tcp net.Listener
}

// Listen binds addr:53 (UDP and TCP), unless it listens there already.
// A node's pod CIDR does not change while it runs, so a second address is
// an error.
func (d *nodeDNS) Listen(addr netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.addr == addr:
		return nil
	case d.addr.IsValid():
		return fmt.Errorf("cluster DNS listens at %s already, not at %s", d.addr, addr)
	}
	ap := netip.AddrPortFrom(addr, 53).String()
	udp, err := net.ListenPacket("udp", ap)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	tcp, err := net.Listen("tcp", ap)
	if err != nil {
		udp.Close()
		return fmt.Errorf("cluster DNS: %w", err)
	}
	d.addr = addr
	d.conns <- dnsConns{udp, tcp}
	d.log.Info("cluster DNS listening", "address", ap)
	return nil
}

// Run serves once Listen has bound, until ctx is done.
func (d *nodeDNS) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case c := <-d.conns:
		err := d.server.Serve(ctx, c.udp, c.tcp)
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
}
