package wire

import "net/netip"

// Defaults every process of a cluster assumes unless told otherwise: a
// server's --cluster-cidr and --service-cidr, an agent's --cluster-cidr
// and --cluster-domain, a cluster template's network.
const (
	// DefaultClusterCIDR is the range of all pods' addresses; each node
	// gets a block of it.
	DefaultClusterCIDR = "10.244.0.0/16"
	// DefaultServiceCIDR is the range of services' cluster IPs; its first
	// address is the "kubernetes" service's.
	DefaultServiceCIDR = "10.96.0.0/12"
	// DefaultClusterDomain is the cluster's DNS domain.
	DefaultClusterDomain = "cluster.local"
	// DefaultProviderNetwork is the cluster service's host network for
	// the local provider; the service has its first address.
	DefaultProviderNetwork = "10.123.0.0/24"
)

// CNIConfDir is where, under an agent's state directory, the agent writes
// the CNI conflist and its containerd reads it (conf_dir). Whoever tears a
// host down (wharf down, a provider) reads the pod CIDR and bridge there.
const CNIConfDir = "cni/net.d"

// PodGateway is a node's first address of its pod CIDR: the pods' bridge
// has it (their default route goes there), and the agent's DNS server
// listens there.
func PodGateway(podCIDR netip.Prefix) netip.Addr { return podCIDR.Masked().Addr().Next() }
