// Package wire holds what the separate processes of a cluster agree on:
// the join endpoints and the join token (docs/agent.md), node tokens and
// the Secrets that keep them, the default pod and service ranges and DNS
// domain, where under an agent's state directory its CNI config lives,
// and what a cluster service hands the cluster controller it runs.
//
// A server, an agent, the cluster controller, the host providers and the
// CLI each define none of these themselves; they import this package,
// not each other. It imports nothing of Wharf (test/style checks who may
// import whom).
package wire
