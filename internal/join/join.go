// Package join holds the wire contract of joining a cluster, as
// docs/agent.md fixes it: an agent checks the CA from CAPath against the
// hash in its join token, then POSTs a Request to Path with the token's
// secret and gets back a Response. The agent (the client) and the control
// plane (the server) share it; it imports nothing of either.
package join

// The joining endpoints of the API server.
const (
	// CAPath serves the cluster CA certificate (PEM), without
	// authentication.
	CAPath = "/wharf/v1/ca"
	// Path trades the join secret for a node's credentials.
	Path = "/wharf/v1/join"
)

// Request is what an agent POSTs to Path.
type Request struct {
	NodeName  string   `json:"nodeName"`
	Addresses []string `json:"addresses"`
}

// Response is the server's answer to a Request: the node's token and its
// serving certificate and key (PEM).
type Response struct {
	Token       string `json:"token"`
	ServingCert string `json:"servingCert"`
	ServingKey  string `json:"servingKey"`
}
