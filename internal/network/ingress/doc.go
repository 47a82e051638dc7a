// Package ingress is the data plane of the ingress controller built into
// the node agent: an HTTP and HTTPS reverse proxy that routes requests by
// the networking.k8s.io/v1 Ingresses of the IngressClasses it owns to
// the ready endpoints of their backend Services, as ingress-nginx does,
// but in-process.
//
// Why in the agent: every node already watches Services and
// EndpointSlices for its service proxy and DNS (package
// internal/agent/services), so an ingress controller there costs one
// more Sink and three more informers (Ingresses, IngressClasses,
// Secrets), and no extra process, image or Deployment to keep alive;
// every node can then take HTTP(S) traffic on its own addresses.
//
// Why straight to endpoints (pod IP:port) rather than through a
// Service's cluster IP: the proxy then keeps one keep-alive pool per pod,
// balances requests (not connections, which a cluster IP's DNAT picks
// once for a connection's whole life) and retries a refused connection on
// another pod; an update of the EndpointSlice takes a pod out of
// rotation at the next table build, without waiting for nftables.
//
// No fallback certificate: a TLS handshake for a name no usable
// certificate covers fails (and so does one without SNI) instead of
// being answered with a self-signed "fake" certificate, which clients
// would reject anyway and which hides misconfiguration. A host whose
// Secret is missing or invalid fails alone; every other host keeps
// working. Problems() says, per Ingress, what the last build could not
// honour, for the server to turn into Events.
//
// Routing follows the Ingress API: a request's host (Host header,
// case-insensitive, port ignored) selects the rules of that host, else
// of its wildcard ("*.example.test", one label), else the rules without
// host; the longest matching path wins (Exact before Prefix at equal
// length; Prefix matches whole path elements; ImplementationSpecific is
// Prefix), matched on the path cleaned of "//", "." and ".."; a request
// no path matches goes to the default backend of the Ingresses of its
// host, else to that of the oldest Ingress that has one, else gets a 404.
// Ingresses of one host merge; on a conflict the oldest (then by
// namespace/name) wins and the other gets a problem. Annotations:
// wharf.dev/ssl-redirect "true" redirects plain HTTP to HTTPS (308) for
// the Ingress's TLS hosts; wharf.dev/backend-protocol "h2c" speaks
// HTTP/2 without TLS to its backends (gRPC), else HTTP/1.1.
//
// Serving: HTTP/1.1 takes the fast path of front.go (one goroutine per
// client connection, pooled endpoint connections, raw non-blocking
// system calls in rawio.go); HTTP/2, upgrades and everything unusual are
// handed with their connection to net/http's server, the Handler and
// httputil.ReverseProxy. Both set the same headers and pages.
//
// Concurrency: the informers' objects are reduced on arrival to what
// routing needs (copies; a Secret's certificate is parsed once per
// resourceVersion), under a mutex. A build turns a snapshot of them into
// an immutable routing table (hosts, path tables sorted once, backends
// with their endpoints, certificates by SNI) and swaps it in through an
// atomic pointer: a request or handshake loads the pointer once and sees
// either the whole old table or the whole new one, never a half-built
// one, and established connections are unaffected by a swap. Builds run
// after a burst of changes (debounced) once Sync has been called, which
// the caller does when its informers have synced, so that a partial view
// at start-up is neither served nor reported as problems.
package ingress
