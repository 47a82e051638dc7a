package wire

import (
	"context"
	"log/slog"

	"k8s.io/client-go/rest"
)

// ServiceEnv is what the cluster controller gets from the cluster service
// (`wharf service`) it runs in. It is here, not with the server, so that
// the controller need not link the server (etcd, storage, the API).
type ServiceEnv struct {
	Logger *slog.Logger
	// Loopback is the in-process client configuration (system:masters).
	Loopback *rest.Config
	// URL is where clients on this machine reach the service.
	URL string
	// CACertPEM is the service's CA: workers trust its registry with it.
	CACertPEM []byte
	// ProviderNetwork is the local provider's network; ServiceAddress its
	// first address, where hosts reach the service, in the serving certificate.
	ProviderNetwork string
	ServiceAddress  string
	// RegistryURL is the service's image registry as hosts reach it
	// (https://<service address>:<port>).
	RegistryURL string
	// HostsDir is where providers keep hosts (S/hosts).
	HostsDir string
	// DataDir is the service's state dir (S); cluster backups go in S/backups.
	DataDir string
}

// ServiceController runs the cluster controller until ctx ends; an error
// stops the service.
type ServiceController func(ctx context.Context, env ServiceEnv) error

// The cluster service hands each cluster its load balancer block through
// this ConfigMap as well as through `wharf server --lb-cidr`: a cluster made
// before it had a block, or whose block changes, gets it without its
// server restarting. Data key LoadBalancerPoolKey: CIDRs, comma-separated.
const (
	LoadBalancerPoolNamespace = "kube-system"
	LoadBalancerPoolConfigMap = "wharf-load-balancer-pool"
	LoadBalancerPoolKey       = "cidrs"
)

// The key that signs the nodes' load balancer heartbeats: a Secret the
// server makes once (32 random bytes under HeartbeatKeyField); every agent
// reads it when its speaker starts.
const (
	HeartbeatKeyNamespace = "kube-system"
	HeartbeatKeySecret    = "wharf-heartbeat-key"
	HeartbeatKeyField     = "key"
)
