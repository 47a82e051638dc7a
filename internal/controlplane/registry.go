package controlplane

import (
	"net/http"
	"path/filepath"
	"slices"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/registry"
)

// registryRoutes serves the cluster's image registry under /v2/, with
// its data in <data-dir>/registry. The API server has authenticated the
// caller by then; registryAccess decides what the caller may do.
func (s *Server) registryRoutes() []apiserver.Route {
	reg := registry.New(filepath.Join(s.opts.DataDir, "registry"),
		registry.WithLogger(s.log.With("component", "registry")),
		registry.WithAuthorizer(registryAccess))
	return []apiserver.Route{{Pattern: "/v2/", Handler: reg}}
}

// registryAccess: cluster admins push and pull; nodes pull (containerd
// on each host, with its node token).
func registryAccess(r *http.Request, write bool) bool {
	u, ok := apiserver.UserFrom(r.Context())
	if !ok {
		return false
	}
	if slices.Contains(u.Groups, "system:masters") {
		return true
	}
	return !write && slices.Contains(u.Groups, "system:nodes")
}
