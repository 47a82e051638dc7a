package wire

// A cluster's masters each run an etcd member in their server process. A
// new master joins through the API of a running one, and the cluster
// service reads each member's own view to report health and to recover
// from a lost quorum (docs/ha.md). Every path needs system:masters.
const (
	// EtcdStatusPath (GET) is the member's own view, answered without
	// quorum: a survivor of a quorum loss still says what it holds.
	EtcdStatusPath = "/wharf/v1/etcd/status"
	// EtcdMembersPath (POST an EtcdJoinRequest) adds a learner member and
	// answers an EtcdJoinResponse.
	EtcdMembersPath = "/wharf/v1/etcd/members"
	// EtcdPromotePath (POST an EtcdJoinRequest) makes a caught-up learner
	// a voting member; 409 while it is still catching up.
	EtcdPromotePath = "/wharf/v1/etcd/promote"
	// EtcdForceNewClusterPath (POST) restarts the member as the only
	// member of a new cluster, with all its data: quorum recovery.
	EtcdForceNewClusterPath = "/wharf/v1/etcd/force-new-cluster"
	// EtcdPeerPort is where members of a cluster reach each other.
	EtcdPeerPort = 2380
)

// EtcdMember is a member of the etcd cluster as its membership lists it.
type EtcdMember struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
	Learner  bool     `json:"learner,omitempty"`
}

// EtcdStatus is one member's own view.
type EtcdStatus struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Leader is the leader's ID as this member knows it; "" when it
	// knows none (an election, or no quorum).
	Leader  string `json:"leader"`
	Learner bool   `json:"learner,omitempty"`
	// Revision and AppliedIndex say how up to date the member is: the
	// one with the highest applied index rebuilds a lost quorum.
	Revision     int64        `json:"revision"`
	AppliedIndex uint64       `json:"appliedIndex"`
	Term         uint64       `json:"term"`
	Members      []EtcdMember `json:"members"`
}

// EtcdJoinRequest names a member to add or promote.
type EtcdJoinRequest struct {
	Name    string `json:"name"`
	PeerURL string `json:"peerURL"`
}

// EtcdJoinResponse is what a joining member starts with: etcd's
// initial-cluster string, itself included.
type EtcdJoinResponse struct {
	InitialCluster string `json:"initialCluster"`
	ID             string `json:"id"`
}
