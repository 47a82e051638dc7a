package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/agent/localpv"
	"wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/agent/pods"
	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/network/cni"
	"wharf.dev/wharf/internal/network/podnet"
	"wharf.dev/wharf/internal/wire"
)

// startRuntime returns a CRI client of the node's containerd: the one at
// cfg.ContainerdSocket, or the agent's own, configured to pull the
// cluster's images from the server with the node token and started (or
// adopted, if it survived an agent restart).
func startRuntime(ctx context.Context, log *slog.Logger, cfg Config, creds *Credentials) (*cri.Client, error) {
	socket := cfg.ContainerdSocket
	if socket == "" {
		registry, err := registryEndpoint(cfg, creds)
		if err != nil {
			return nil, err
		}
		ccfg := containerd.Config{
			StateDir:     cfg.StateDir,
			CgroupRoot:   cfg.CgroupRoot,
			SandboxImage: images.PauseImage,
			Registries:   map[string][]containerd.Endpoint{images.Registry: {registry}},
			CNIConfDir:   cfg.CNIConfDir,
			CNIBinDir:    cfg.CNIBinDir,
			SharedDirs:   []string{pods.VolumesRoot(cfg.StateDir), localpv.Dir(cfg.StateDir)},
			Logger:       log.With("component", "containerd"),
		}
		if err := containerd.WriteConfig(ccfg); err != nil {
			return nil, fmt.Errorf("containerd config: %w", err)
		}
		// The daemon outlives ctx: an agent restart adopts it, pods keep running.
		d, err := containerd.Start(ctx, ccfg)
		if err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
		socket = d.Socket()
	}
	rt, err := cri.Dial(ctx, socket, cri.WithLogger(log.With("component", "cri")))
	if err != nil {
		return nil, fmt.Errorf("CRI at %s: %w", socket, err)
	}
	return rt, nil
}

// registryEndpoint is where containerd pulls registry.wharf.local from:
// the cluster's server with the node token, or the registry the flags
// name (the cluster service's, for the hosts it made: every cluster pulls
// the same images from there, and a new cluster's server starts empty).
func registryEndpoint(cfg Config, creds *Credentials) (containerd.Endpoint, error) {
	if cfg.RegistryURL == "" {
		return containerd.Endpoint{URL: cfg.ServerURL, CAFile: filepath.Join(creds.Dir, caFile), BearerToken: creds.Token}, nil
	}
	ep := containerd.Endpoint{URL: cfg.RegistryURL, CAFile: cfg.RegistryCAFile}
	if cfg.RegistryTokenFile != "" {
		data, err := os.ReadFile(cfg.RegistryTokenFile)
		if err != nil {
			return ep, fmt.Errorf("registry token: %w", err)
		}
		ep.BearerToken = strings.TrimSpace(string(data))
	}
	if cfg.RegistryCAFile != "" {
		if _, err := os.Stat(cfg.RegistryCAFile); err != nil {
			return ep, fmt.Errorf("registry CA: %w", err)
		}
	}
	return ep, nil
}

// installPlugin puts wharf-cni where containerd runs CNI plugins from (as
// "loopback" too, for the agent's own containerd).
func installPlugin(cfg Config) error {
	plugin, err := podnet.FindPlugin()
	if err != nil {
		return err
	}
	return podnet.InstallPlugin(plugin, cfg.CNIBinDir, cfg.ContainerdSocket == "")
}

// newPodNetwork returns the node's pod network, which networkFunc
// configures and Run serves; it keeps the addresses of the sandboxes rt has.
func newPodNetwork(cfg Config, log *slog.Logger, rt *cri.Client) (*podnet.Server, error) {
	return podnet.New(podnet.Config{
		DataDir:     filepath.Join(cfg.StateDir, "cni", "podnet"),
		Bridge:      cfg.CNIBridge,
		ServiceCIDR: netip.MustParsePrefix(cfg.ServiceCIDR),
		Sandboxes:   sandboxIDs(rt),
		Logger:      log,
	})
}

func podNetworkSocket(cfg Config) string { return filepath.Join(cfg.StateDir, "cni", "wharf.sock") }

// sandboxIDs lists every sandbox the runtime has, whatever its state:
// the pod network keeps their addresses.
func sandboxIDs(rt *cri.Client) func(context.Context) (map[string]bool, error) {
	return func(ctx context.Context) (map[string]bool, error) {
		list, err := rt.ListPodSandbox(ctx, nil)
		if err != nil {
			return nil, err
		}
		ids := make(map[string]bool, len(list))
		for _, s := range list {
			ids[s.Id] = true
		}
		return ids, nil
	}
}

// networkFunc configures pod networking for the node's pod CIDR: the pod
// network's bridge, the cluster DNS at its address, the CNI conflist
// containerd reads (last: no pod starts before DNS listens), forwarding
// of the pods' traffic, and no masquerading between pods of the cluster.
func networkFunc(cfg Config, log *slog.Logger, pn *podnet.Server, dns *nodeDNS, relay *apiRelay) node.NetworkFunc {
	return func(ctx context.Context, podCIDR string) error {
		if err := pn.Configure(ctx, podCIDR); err != nil {
			return err
		}
		p, err := netip.ParsePrefix(podCIDR)
		if err != nil {
			return fmt.Errorf("pod CIDR: %w", err)
		}
		if len(cfg.ClusterDNS) == 0 {
			if err := dns.Listen(wire.PodGateway(p)); err != nil {
				return err
			}
		}
		if err := relay.Listen(wire.PodGateway(p)); err != nil {
			return fmt.Errorf("API relay: %w", err)
		}
		changed, err := cni.WriteConflist(cfg.CNIConfDir, cni.Options{PodCIDR: podCIDR, Bridge: cfg.CNIBridge, Socket: podNetworkSocket(cfg)})
		if err != nil {
			return fmt.Errorf("CNI config: %w", err)
		}
		if changed {
			log.Info("wrote CNI config", "dir", cfg.CNIConfDir, "podCIDR", podCIDR)
		}
		if err := cni.AllowForward(ctx, podCIDR); err != nil {
			return fmt.Errorf("forwarding of %s: %w", podCIDR, err)
		}
		if err := cni.Masquerade(ctx, podCIDR, cfg.ClusterCIDR); err != nil {
			return fmt.Errorf("masquerading of %s: %w", podCIDR, err)
		}
		return nil
	}
}

func newPods(cfg Config, client kubernetes.Interface, rt *cri.Client, svcs pods.ServiceSource, log *slog.Logger) *pods.Manager {
	return pods.New(pods.Config{
		NodeName: cfg.NodeName, StateDir: cfg.StateDir, CgroupRoot: cfg.CgroupRoot,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, ResolvConf: cfg.ResolvConf,
		NodeLocalDNS: len(cfg.ClusterDNS) == 0, Services: svcs,
		Runtime: rt, Images: rt, Client: client, Logger: log,
	})
}
