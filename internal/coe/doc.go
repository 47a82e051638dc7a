// Package coe is the cluster service's controller: it turns wharf.dev/v1
// Cluster and NodeGroup objects into hosts made through a provider.Provider,
// with a `wharf server` on each master and a `wharf agent` on each worker
// (docs/service.md fixes what goes on them), and keeps them so.
//
// Everything the controller knows is derived from the Cluster, its node
// groups, its credentials Secret and the provider's ListHosts, so the
// service may be killed at any point: a new controller adopts the hosts and
// resumes what was under way. Provider calls are idempotent; a create that
// cannot finish ends in CREATE_FAILED within the cluster's createTimeout.
//
// Per cluster: create (credentials, master hosts, control plane ready,
// worker hosts, nodes ready → CREATE_COMPLETE), resize of node groups
// (grow; shrink with cordon, drain, host and Node deletion), node group
// labels and taints on the nodes, delete (every host the provider lists,
// then the finalizer), a health loop that polls each cluster's API and
// replaces dead workers when auto_healing_enabled=true, and a host
// autoscaler per cluster whose node groups have auto_scaling_enabled=true
// (autoscale.go: it resizes the groups as a user would; its decisions are
// pure functions in autoscale_plan.go, on the scheduler's Simulator).
//
// The wharf.dev objects are read and written with internal/client/wharf.
package coe
