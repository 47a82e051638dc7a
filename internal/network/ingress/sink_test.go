package ingress

import "wharf.dev/wharf/internal/agent/services"

// The proxy is fed Services and EndpointSlices as one more Sink of the
// agent's services watcher.
var _ services.Sink = (*Proxy)(nil)
