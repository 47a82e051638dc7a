package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterTemplate says how clusters are built: the orchestrator, the host
// provider, the hosts' size and the networks (Magnum's cluster template).
// Templates live in a project (namespace); a public one may be used from
// every project as "<namespace>/<name>".
type ClusterTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterTemplateSpec `json:"spec"`
}

// ClusterTemplateSpec is a template's content.
type ClusterTemplateSpec struct {
	// COE is the container orchestration engine; only "kubernetes".
	COE string `json:"coe"`
	// Provider makes the hosts: "local" (network namespaces on the
	// service's machine) or "ssh" (machines that already exist).
	Provider string `json:"provider"`
	// Flavor bounds each host's resources.
	Flavor Flavor `json:"flavor,omitempty"`
	// Network holds the clusters' address ranges.
	Network Network `json:"network,omitempty"`
	// SSH says how to reach the machines of the ssh provider.
	SSH *SSHHosts `json:"ssh,omitempty"`
	// Labels are copied to the clusters made from the template (a
	// cluster's own labels override them); see the Label* constants.
	Labels map[string]string `json:"labels,omitempty"`
	// Public templates can be used from every project.
	Public bool `json:"public,omitempty"`
	// Hidden templates are left out of lists, unless asked for.
	Hidden bool `json:"hidden,omitempty"`
}

// Flavor is a host's size: CPU and memory limits (quantities, e.g. "2", "4Gi").
type Flavor struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// Network holds CIDRs: hosts' addresses (the local provider allocates
// from it, inside its bridge's network), pods' and services' addresses.
type Network struct {
	HostCIDR    string `json:"hostCIDR,omitempty"`
	PodCIDR     string `json:"podCIDR,omitempty"`
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// LoadBalancerCIDR is the pool on the provider network that clusters'
	// LoadBalancer services get addresses from: each cluster is given a
	// block of it (a /28, or the whole pool if smaller) when it is made.
	// Empty: the provider's default pool (the local provider's is the top
	// quarter of its network), or none.
	LoadBalancerCIDR string `json:"loadBalancerCIDR,omitempty"`
	// DNSNameserver is the resolver pods use for names outside the
	// cluster (Magnum's dns_nameserver): an IPv4 address, or "none" for
	// no resolver at all (isolated clusters, tests); empty: the hosts'
	// own /etc/resolv.conf.
	DNSNameserver string `json:"dnsNameserver,omitempty"`
}

// DNSNameserverNone: pods get no resolver for names outside the cluster.
const DNSNameserverNone = "none"

// SSHHosts are the machines of the ssh provider.
type SSHHosts struct {
	// Hosts are addresses ("host" or "host:port") hosts are taken from, in order.
	Hosts []string `json:"hosts"`
	User  string   `json:"user,omitempty"`
	// KeySecret names a Secret in the template's namespace whose
	// "ssh-privatekey" key holds the private key.
	KeySecret string `json:"keySecret"`
	// KnownHostsSecret, when set, names a Secret whose "known_hosts" key
	// pins the machines' host keys.
	KnownHostsSecret string `json:"knownHostsSecret,omitempty"`
}

// Labels with a meaning (Magnum's names where Magnum has one).
const (
	// LabelAutoHealing "true": the service replaces hosts whose node
	// stays NotReady.
	LabelAutoHealing = "auto_healing_enabled"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterTemplateList is a list of templates.
type ClusterTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterTemplate `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Cluster is one orchestrator cluster and its hosts (Magnum's cluster).
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterSpec   `json:"spec"`
	Status            ClusterStatus `json:"status,omitempty"`
}

// ClusterSpec is what the user asked for.
type ClusterSpec struct {
	// Template names the ClusterTemplate: "name" in the cluster's
	// namespace, or "namespace/name" for another project's public one.
	Template string `json:"template"`
	// MasterCount: 1, 3, 5 or 7 control plane hosts.
	MasterCount int32 `json:"masterCount"`
	// NodeCount is the default worker node group's size.
	NodeCount int32 `json:"nodeCount"`
	// Labels override the template's.
	Labels map[string]string `json:"labels,omitempty"`
	// CreateTimeout bounds CREATE_IN_PROGRESS (default 10m).
	CreateTimeout *metav1.Duration `json:"createTimeout,omitempty"`
	// FromBackup names a Completed ClusterBackup of the cluster's project:
	// the first master starts from its etcd snapshot (immutable).
	FromBackup string `json:"fromBackup,omitempty"`
	// Recover, set to a new value, asks the service to rebuild a lost
	// etcd quorum (`wharf cluster recover`); accepted only while the
	// cluster's health says the quorum is lost.
	Recover string `json:"recover,omitempty"`
}

// Cluster statuses, as Magnum names them.
const (
	StatusCreateInProgress = "CREATE_IN_PROGRESS"
	StatusCreateComplete   = "CREATE_COMPLETE"
	StatusCreateFailed     = "CREATE_FAILED"
	StatusUpdateInProgress = "UPDATE_IN_PROGRESS"
	StatusUpdateComplete   = "UPDATE_COMPLETE"
	StatusUpdateFailed     = "UPDATE_FAILED"
	StatusDeleteInProgress = "DELETE_IN_PROGRESS"
	StatusDeleteFailed     = "DELETE_FAILED"

	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
	HealthUnknown   = "UNKNOWN"
)

// ClusterStatus is what the service observed and did (the fields
// `openstack coe cluster show` prints).
type ClusterStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Status             string `json:"status,omitempty"`
	// StatusReason says why, always, for a failure.
	StatusReason string `json:"statusReason,omitempty"`
	HealthStatus string `json:"healthStatus,omitempty"`
	// HealthStatusReason maps "api" and each node's name to what is wrong
	// (or "Ready").
	HealthStatusReason map[string]string `json:"healthStatusReason,omitempty"`
	// APIAddress is the cluster's API URL.
	APIAddress       string   `json:"apiAddress,omitempty"`
	MasterAddresses  []string `json:"masterAddresses,omitempty"`
	NodeAddresses    []string `json:"nodeAddresses,omitempty"`
	COEVersion       string   `json:"coeVersion,omitempty"`
	ContainerVersion string   `json:"containerVersion,omitempty"`
	// Faults maps a host or a step to its error.
	Faults map[string]string `json:"faults,omitempty"`
	// LoadBalancerCIDR is the cluster's block of its template's load
	// balancer pool; empty: the cluster has none.
	LoadBalancerCIDR string `json:"loadBalancerCIDR,omitempty"`
	// LoadBalancers are the cluster's LoadBalancer services as last seen
	// (Magnum's list of a cluster's Octavia load balancers).
	LoadBalancers []LoadBalancer `json:"loadBalancers,omitempty"`
	// Recovered is the last Spec.Recover the service acted on.
	Recovered string `json:"recovered,omitempty"`
	// Steps are the provisioning steps done so far, for `--wait`.
	Steps     []Step       `json:"steps,omitempty"`
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
}

// LoadBalancer is a LoadBalancer service of a cluster.
type LoadBalancer struct {
	// Service is "namespace/name".
	Service string `json:"service"`
	// Address is the service's load balancer address; empty: pending.
	Address string `json:"address,omitempty"`
	// Ports are the service's ports, "80/TCP".
	Ports []string `json:"ports,omitempty"`
}

// Step is one provisioning step and when it finished.
type Step struct {
	Name string      `json:"name"`
	At   metav1.Time `json:"at"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterList is a list of clusters.
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NodeGroup is a set of a cluster's hosts with one role, size, labels and
// taints (Magnum's node group). Every cluster has "<cluster>-default-master"
// and "<cluster>-default-worker"; more worker groups can be added.
type NodeGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeGroupSpec   `json:"spec"`
	Status            NodeGroupStatus `json:"status,omitempty"`
}

// Node group roles.
const (
	RoleMaster = "master"
	RoleWorker = "worker"
)

// NodeGroupSpec is a node group's wanted state.
type NodeGroupSpec struct {
	// Cluster names the cluster, in the group's namespace.
	Cluster string `json:"cluster"`
	Role    string `json:"role"`
	// NodeCount hosts, within [MinNodeCount, MaxNodeCount] when set.
	NodeCount    int32  `json:"nodeCount"`
	MinNodeCount int32  `json:"minNodeCount,omitempty"`
	MaxNodeCount *int32 `json:"maxNodeCount,omitempty"`
	// Labels and Taints are applied to the group's nodes.
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
	// NodesToRemove names the hosts to remove first when NodeCount goes
	// down (`wharf cluster resize --nodes-to-remove`).
	NodesToRemove []string `json:"nodesToRemove,omitempty"`
}

// NodeGroupStatus is what the group's hosts are.
type NodeGroupStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Status             string `json:"status,omitempty"`
	StatusReason       string `json:"statusReason,omitempty"`
	// Nodes are the group's hosts (node names).
	Nodes []string `json:"nodes,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// NodeGroupList is a list of node groups.
type NodeGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeGroup `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterBackup is an etcd snapshot of a cluster, taken through the
// cluster's API and kept by the service (docs/service.md, "Backups"). It
// outlives its cluster: deleting the backup deletes the file.
type ClusterBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterBackupSpec   `json:"spec"`
	Status            ClusterBackupStatus `json:"status,omitempty"`
}

// ClusterBackupSpec says which cluster to back up.
type ClusterBackupSpec struct {
	// Cluster names the cluster, in the backup's namespace.
	Cluster string `json:"cluster"`
}

// Backup phases.
const (
	BackupPending   = "Pending"
	BackupCompleted = "Completed"
	BackupFailed    = "Failed"
)

// LabelBackupInterval and LabelBackupRetention are the cluster labels of
// scheduled backups: every interval (a Go duration, at least 1m) a backup
// <cluster>-auto-<time> is taken, and the oldest scheduled ones beyond
// retention (default 7) are deleted.
const (
	LabelBackupInterval  = "backup_interval"
	LabelBackupRetention = "backup_retention"
	// LabelScheduledBackup marks the backups a schedule took (value: the cluster).
	LabelScheduledBackup = "wharf.dev/scheduled-backup"
)

// StepBackup is the create step that checks spec.fromBackup's file, before
// anything is made; a failure is in status.faults[StepBackup].
const StepBackup = "backup"

// ClusterBackupStatus describes the snapshot.
type ClusterBackupStatus struct {
	Phase  string `json:"phase,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ClusterUID is the backed-up cluster's: a later cluster of the same
	// name is another cluster.
	ClusterUID string `json:"clusterUID,omitempty"`
	SizeBytes  int64  `json:"sizeBytes,omitempty"`
	// SHA256 is the hex sha256 of the snapshot file.
	SHA256 string `json:"sha256,omitempty"`
	// Revision is the etcd revision of the snapshot; ObjectCount the keys
	// (API objects and a few of the server's own records) it holds.
	Revision       int64        `json:"revision,omitempty"`
	ObjectCount    int64        `json:"objectCount,omitempty"`
	StartTime      *metav1.Time `json:"startTime,omitempty"`
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ClusterBackupList is a list of cluster backups.
type ClusterBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterBackup `json:"items"`
}
