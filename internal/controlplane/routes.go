package controlplane

import (
	"context"

	"wharf.dev/wharf/internal/apiserver"
)

// routes are the handlers served beside the API: the image registry
// (registry.go) and the agents' join endpoints (join.go).
func (s *Server) routes(ctx context.Context) []apiserver.Route {
	return append(s.registryRoutes(ctx), s.joinRoutes()...)
}
