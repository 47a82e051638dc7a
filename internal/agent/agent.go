// Package agent runs one host of a Wharf cluster (`wharf agent`), what the
// kubelet and kube-proxy are to Kubernetes: it joins the cluster, starts
// containerd (or uses one already running), registers the Node and keeps
// its status and lease current (package node), configures pod networking
// once the control plane assigns the node a pod CIDR, runs the pods bound
// to the node (package pods) and serves their logs and exec to the API
// server (package stream). docs/agent.md fixes the contracts between them.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/agent/localpv"
	"wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/agent/stats"
	"wharf.dev/wharf/internal/agent/stream"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/podnet"
	"wharf.dev/wharf/internal/network/routes"
	"wharf.dev/wharf/internal/nodehost"
	"wharf.dev/wharf/internal/wire"
)

// Defaults of Config; the cluster-wide ones (ClusterCIDR, ServiceCIDR,
// ClusterDomain, CNIConfDir under StateDir) are package wire's.
const (
	DefaultStateDir   = "/var/lib/wharf/agent"
	DefaultListen     = stream.DefaultListen
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultExternalCNIConfDir is where an external containerd reads CNI
	// configuration unless told otherwise.
	DefaultExternalCNIConfDir = "/etc/cni/net.d"
	// DefaultExternalCNIBinDir is where it runs CNI plugins from.
	DefaultExternalCNIBinDir = "/opt/cni/bin"
)

// Config says how an agent runs.
type Config struct {
	// ServerURL is the control plane's URL, e.g. https://10.0.0.1:6443.
	ServerURL string
	// Token is the join token (wharf1.<CA hash>.<secret>, or just the
	// secret with CAFile).
	Token  string
	CAFile string
	// StateDir holds credentials, containerd, CNI state, pods' volumes and logs.
	StateDir string
	NodeName string
	// NodeIP is the InternalIP; empty: detected (node.DetectNodeIP).
	NodeIP string
	// Listen is the HTTPS address for logs and exec (default DefaultListen).
	Listen string
	// CgroupRoot holds containerd (CgroupRoot/daemon) and the pods
	// (CgroupRoot/pod<uid>); default /wharf/<node>.
	CgroupRoot string
	// ContainerdSocket selects a containerd already running; empty: the
	// agent writes the config of its own and starts (or adopts) it.
	ContainerdSocket string
	// CNIConfDir is where the CNI conflist goes: the managed containerd's
	// (StateDir/cni/net.d) or, with ContainerdSocket, /etc/cni/net.d.
	CNIConfDir string
	// CNIBinDir is where containerd finds CNI plugins, and the agent puts
	// wharf-cni: the managed containerd's (StateDir/cni/bin) or, with
	// ContainerdSocket, /opt/cni/bin.
	CNIBinDir string
	// ClusterCIDR is the range of all pods' addresses: traffic between pods
	// is not masqueraded inside it.
	ClusterCIDR string
	// ServiceCIDR is the range of the cluster's service addresses, as the
	// server's --service-cidr. With ClusterCIDR it is held unreachable in
	// the node's namespace wherever no route carries it (routes.Guard).
	ServiceCIDR string
	// CNIBridge is the pods' bridge (default cni.DefaultBridge); agents
	// sharing a network namespace (two `wharf up` on one machine) each
	// need their own.
	CNIBridge string
	// ResolvConf is what pods with dnsPolicy Default get as resolver
	// configuration (the kubelet's --resolv-conf); "": no nameserver.
	ResolvConf string
	// RegistryURL, if set, serves registry.wharf.local instead of the
	// cluster's server: the cluster service's registry, for hosts it
	// made. RegistryCAFile is the CA its certificate is checked against
	// (empty: the system roots) and RegistryTokenFile holds the bearer
	// token sent with each request (empty: none); both need RegistryURL.
	RegistryURL       string
	RegistryCAFile    string
	RegistryTokenFile string

	// ClusterDNS are the nameservers of pods with dnsPolicy ClusterFirst;
	// empty: the agent's own, at the pods' gateway address.
	ClusterDNS    []string
	ClusterDomain string
	// LoadBalancerLocal: the cluster's load balancer addresses are this
	// machine's own (`wharf up`: one node, on the machine's network): they
	// are held on lo and never announced, so nothing about them leaves
	// the machine.
	LoadBalancerLocal bool
	// IngressHTTP and IngressHTTPS are where the node's ingress proxy
	// listens (default ":80" and ":443"; "-": not served).
	IngressHTTP, IngressHTTPS string
	// Version is reported as the node's kubelet version.
	Version string
	Logger  *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.ServerURL == "" || c.Token == "" || c.NodeName == "" {
		return c, errors.New("agent: the server URL, a join token and a node name are required")
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return c, fmt.Errorf("state dir: %w", err)
	}
	c.StateDir = abs
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = "/wharf/" + c.NodeName
	}
	if c.CNIConfDir == "" {
		c.CNIConfDir = filepath.Join(c.StateDir, wire.CNIConfDir)
		if c.ContainerdSocket != "" {
			c.CNIConfDir = DefaultExternalCNIConfDir
		}
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = filepath.Join(c.StateDir, "cni", "bin")
		if c.ContainerdSocket != "" {
			c.CNIBinDir = DefaultExternalCNIBinDir
		}
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = wire.DefaultClusterCIDR
	}
	if _, err := netip.ParsePrefix(c.ClusterCIDR); err != nil {
		return c, fmt.Errorf("cluster CIDR %q: %w", c.ClusterCIDR, err)
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = wire.DefaultServiceCIDR
	}
	if _, err := netip.ParsePrefix(c.ServiceCIDR); err != nil {
		return c, fmt.Errorf("service CIDR %q: %w", c.ServiceCIDR, err)
	}
	if c.CNIBridge == "" {
		c.CNIBridge = cni.DefaultBridge
	}
	if c.RegistryURL == "" && (c.RegistryCAFile != "" || c.RegistryTokenFile != "") {
		return c, errors.New("agent: a registry CA or token file needs a registry URL")
	}
	for _, f := range []*string{&c.RegistryCAFile, &c.RegistryTokenFile} {
		if *f != "" {
			// containerd reads the CA file, from its own working directory.
			if *f, err = filepath.Abs(*f); err != nil {
				return c, fmt.Errorf("registry file: %w", err)
			}
		}
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = wire.DefaultClusterDomain
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NodeIP == "" {
		ip, err := node.DetectNodeIP()
		if err != nil {
			return c, fmt.Errorf("node IP: %w", err)
		}
		c.NodeIP = ip.String()
	} else if _, err := netip.ParseAddr(c.NodeIP); err != nil {
		return c, fmt.Errorf("node IP %q: %w", c.NodeIP, err)
	}
	return c, nil
}

// Run runs the agent until ctx is done or a part of it fails.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	// What the node leaves on its host, for whoever tears it down.
	if err := recordNode(cfg); err != nil {
		return err
	}
	// Listen first: the node reports the port actually bound (":0" in tests).
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	port := int32(ln.Addr().(*net.TCPAddr).Port)

	addresses := slices.Compact([]string{cfg.NodeIP, cfg.NodeName})
	creds, err := joinRetrying(ctx, log, cfg, addresses)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(creds.RESTConfig(cfg.ServerURL, "wharf-agent/"+cfg.NodeName))
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := installPlugin(cfg); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	// Listening before containerd can ask: a DEL that finds no agent is
	// skipped (see cniplugin), and its address collected only later.
	pnl, err := podnet.Listen(podNetworkSocket(cfg))
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	defer pnl.Close()
	rt, err := startRuntime(ctx, log, cfg, creds)
	if err != nil {
		return err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	pn, err := newPodNetwork(cfg, log.With("component", "podnet"), rt)
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	link, err := newLinking(cfg, client, creds.CAPEM, log)
	if err != nil {
		return err
	}
	relay := newAPIRelay(cfg.ServerURL, log.With("component", "api-relay"), link.watcher.Local)
	sys, err := node.DetectSystem(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("describe host: %w", err)
	}
	pool, err := creds.CAPool()
	if err != nil {
		return err
	}
	nodes := node.New(node.Config{
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, Port: port, Version: cfg.Version, System: sys,
		Client: client, Runtime: rt, Network: networkFunc(cfg, log, pn, link.dns, relay), Logger: log.With("component", "node"),
	})
	pods := newPods(cfg, client, rt, link.watcher, log.With("component", "pods"))
	collector := stats.NewCollector(cfg.NodeName, rt, nodeCgroup(cfg, log), stats.WithLogger(log.With("component", "stats")))
	// Volumes live in the state dir: they go with the host, and two
	// clusters' agents never share one.
	provisioner := localpv.New(localpv.Config{
		NodeName: cfg.NodeName, Client: client, Volumes: localpv.NewDisk(localpv.Dir(cfg.StateDir)),
		Logger: log.With("component", "localpv"),
	})
	server := stream.New(stream.Config{Runtime: rt, Cert: creds.ServingCert, ClientCAs: pool, Logger: log.With("component", "stream"), Stats: collector})
	return runAll(ctx, map[string]func(context.Context) error{
		"node status": nodes.Run,
		"pods":        pods.Run,
		"stats":       collector.Run,
		"provisioner": provisioner.Run,
		"server":      func(ctx context.Context) error { return server.Serve(ctx, ln) },
		"pod network": func(ctx context.Context) error { return pn.Serve(ctx, pnl) },
		"services":    link.runServices,
		"dns":         link.dns.Run,
		"speaker":     link.runSpeaker,
		"ingress":     link.ingress.Run,
		"api relay":   relay.Run,
		// host-gw: routes to the other nodes' pod CIDRs via their
		// addresses; the rest of the cluster's ranges unreachable.
		"routes": routes.New(routes.Config{
			NodeName: cfg.NodeName, Client: client, Logger: log.With("component", "routes"),
			ClusterCIDR: netip.MustParsePrefix(cfg.ClusterCIDR).Masked(),
			Guards:      []netip.Prefix{netip.MustParsePrefix(cfg.ClusterCIDR).Masked(), netip.MustParsePrefix(cfg.ServiceCIDR).Masked()},
		}).Run,
	})
}

// joinRetrying joins, waiting out a server that is not up yet. A refusal
// (wrong token, wrong CA) is final.
func joinRetrying(ctx context.Context, log *slog.Logger, cfg Config, addresses []string) (*Credentials, error) {
	// Short at first: a multi-master cluster's workers start with its
	// masters and join within a second or two.
	wait := 100 * time.Millisecond
	for {
		creds, err := Join(ctx, cfg.ServerURL, cfg.Token, cfg.StateDir, cfg.NodeName, addresses,
			WithCAFile(cfg.CAFile), WithJoinLogger(log))
		var refused *HTTPError
		switch {
		case err == nil:
			return creds, nil
		case errors.As(err, &refused) && refused.Code < 500, errors.Is(err, ErrCAMismatch), ctx.Err() != nil:
			return nil, err
		}
		log.Warn("cannot join yet, retrying", "server", cfg.ServerURL, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// runAll runs the agent's parts until ctx is done or one of them returns:
// an agent missing a part is not a working node, so the rest stop too.
func runAll(parent context.Context, parts map[string]func(context.Context) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(parts))
	for name, run := range parts {
		go func() { done <- result{name, run(ctx)} }()
	}
	first := <-done
	cancel()
	for range len(parts) - 1 {
		<-done
	}
	switch {
	case first.err != nil:
		return fmt.Errorf("%s: %w", first.name, first.err)
	case parent.Err() != nil:
		return nil
	}
	return fmt.Errorf("%s stopped", first.name)
}

// recordNode writes the node's record (package nodehost) before anything
// is made that a teardown must find.
func recordNode(cfg Config) error {
	ns, err := nodehost.CurrentNetNS()
	if err != nil {
		return err
	}
	return nodehost.Write(nodehost.Record{
		StateDir: cfg.StateDir, CgroupRoot: cfg.CgroupRoot, CNIConfDir: cfg.CNIConfDir,
		ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR, NetNS: ns, ServiceTable: serviceTable(cfg.StateDir),
	})
}

// nodeCgroup reads the node's own cgroup subtree (CgroupRoot): nodes
// sharing a machine each report their own usage. nil if it cannot be
// found; the node then reports its containers only.
func nodeCgroup(cfg Config, log *slog.Logger) stats.NodeReader {
	cg, err := stats.NewCgroup(cfg.CgroupRoot)
	if err != nil {
		log.Warn("node usage not reported", "cgroup", cfg.CgroupRoot, "err", err)
		return nil
	}
	return cg
}
