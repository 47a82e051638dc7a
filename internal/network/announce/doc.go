// Package announce makes a cluster's load balancer addresses reachable on
// its hosts' network in layer 2, as kube-vip's ARP mode and MetalLB's
// layer 2 mode do, and tells a node quickly which other nodes are alive.
//
// The node that owns an address holds it as a /32 on the link that carries
// the node's own address (VIPs). The kernel then answers ARP for it and
// delivers its packets locally, where the service proxy's rules apply: no
// ARP responder of our own, unlike MetalLB. When an address moves, the new
// holder sends gratuitous ARP, so the hosts and routers of the segment
// update their neighbour entries at once instead of sending to the old
// holder until their entry goes stale (tens of seconds). A state file
// records what a VIPs added, so a restarted agent removes the addresses it
// no longer owns and never removes one someone else put on the link.
//
// Nodes agree on owners without talking to each other: each computes Owner
// over the same set of live nodes (rendezvous hashing), so an address moves
// only when its owner dies or a node it prefers joins. Liveness comes from
// Members, UDP heartbeats between the nodes on the host network, not from
// Node Leases: failover must take at most 2 s, and a Lease is only renewed
// every few seconds and declared dead after 5 s, plus the watch's delay.
// Heartbeats every 100 ms with a 0.7 s timeout see a dead node within 0.8 s.
package announce
