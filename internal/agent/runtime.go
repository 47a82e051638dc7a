package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/agent/pods"
	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/network/cni"
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

// networkFunc configures pod networking for the node's pod CIDR: the CNI
// conflist containerd reads, forwarding of the pods' traffic, and no
// masquerading between pods of the cluster.
func networkFunc(cfg Config, log *slog.Logger) node.NetworkFunc {
	return func(ctx context.Context, podCIDR string) error {
		changed, err := cni.WriteConflist(cfg.CNIConfDir, cni.Options{
			PodCIDR: podCIDR, Bridge: cfg.CNIBridge, IPAMDataDir: filepath.Join(cfg.StateDir, "cni", "ipam"),
		})
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

func newPods(cfg Config, client kubernetes.Interface, rt *cri.Client, log *slog.Logger) *pods.Manager {
	return pods.New(pods.Config{
		NodeName: cfg.NodeName, StateDir: cfg.StateDir, CgroupRoot: cfg.CgroupRoot,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, ResolvConf: cfg.ResolvConf,
		Runtime: rt, Images: rt, Client: client, Logger: log,
	})
}
