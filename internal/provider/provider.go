// Package provider defines how the cluster service gets hosts: a Provider
// makes, lists, powers off and removes the hosts of a cluster and runs the
// wharf process of each (a server on masters, an agent on workers). The
// implementations are `local` (network namespaces on the service's machine)
// and `ssh` (machines that already exist); providertest is the conformance
// suite every implementation passes.
package provider

import (
	"context"
	"errors"
)

// Roles of hosts.
const (
	RoleMaster = "master"
	RoleWorker = "worker"
)

// ErrNotFound: no such host.
var ErrNotFound = errors.New("host not found")

// ClusterRef names the cluster a host belongs to. UID keeps hosts of a
// deleted and recreated cluster of the same name apart.
type ClusterRef struct {
	Namespace, Name, UID string
}

// Key is a short unique name for the cluster on a provider.
func (c ClusterRef) Key() string {
	uid := c.UID
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return c.Name + "-" + uid
}

// HostSpec is a host to make and the wharf process it runs.
type HostSpec struct {
	Cluster ClusterRef
	// Name is the host's name, also its Node's name (e.g. demo-node-1).
	Name string
	Role string
	// CPU and Memory limit the host (quantities; empty: no limit).
	CPU, Memory string
	// HostCIDR, if set, is the range the host's address comes from (a
	// template's network.hostCIDR); providers that do not allocate
	// addresses ignore it.
	HostCIDR string
	// Files are written below the host's state dir before the process
	// starts (relative path → content, mode 0600): certificates, tokens.
	Files map[string][]byte
	// Args are the wharf command's arguments. "$(HOST_IP)" and
	// "$(STATE_DIR)" are replaced by the host's address and state dir.
	Args []string
}

// LoadBalancerPooler is a Provider with a default pool of load balancer
// addresses on its network, kept free of hosts: clusters of templates
// that name no pool of their own get blocks of it.
type LoadBalancerPooler interface {
	LoadBalancerPool() string
}

// Host is a host as the provider knows it.
type Host struct {
	Name    string
	Role    string
	Cluster ClusterRef
	// Address is the host's IP on the provider's network; the cluster's
	// API and the service reach it there.
	Address string
	// StateDir is where the host's wharf process keeps its data.
	StateDir string
	// Running: the host is up and its wharf process alive.
	Running bool
	// Fault, for a host that should run and does not (its process
	// exited, or was killed by the OOM killer), says why, with the last
	// lines of its log: waiting for such a host is pointless. Empty for a
	// running host, one powered off, or where the provider cannot tell.
	Fault string
}

// Provider makes and removes hosts. Every method is idempotent and safe
// to call again after a crash of the service: hosts outlive the process
// that made them, and a new Provider over the same state finds them.
type Provider interface {
	// Name is "local" or "ssh".
	Name() string
	// CreateHost makes a host and starts its process, or returns the
	// existing one of that name (starting its process if it stopped).
	CreateHost(ctx context.Context, spec HostSpec) (Host, error)
	// DeleteHost stops a host and removes every trace of it; a missing
	// host is not an error.
	DeleteHost(ctx context.Context, cluster ClusterRef, name string) error
	// ListHosts returns a cluster's hosts.
	ListHosts(ctx context.Context, cluster ClusterRef) ([]Host, error)
	// PowerOff stops a host at once, as a power cut would (its state
	// stays); CreateHost of the same spec brings it back.
	PowerOff(ctx context.Context, cluster ClusterRef, name string) error
	// ServiceAddress is the address hosts reach the service at (its
	// registry), e.g. the provider bridge's own IP.
	ServiceAddress() string
}
