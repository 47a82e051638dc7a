package controlplane

import (
	"context"
	"slices"

	"wharf.dev/wharf/internal/apiserver"
)

// routes are the handlers served beside the API: the image registry
// (registry.go), the agents' join endpoints (join.go), the etcd member
// endpoints (members.go) and etcd snapshots (snapshot.go).
func (s *Server) routes(ctx context.Context) []apiserver.Route {
	return slices.Concat(s.registryRoutes(ctx), s.joinRoutes(), s.memberRoutes(), s.snapshotRoutes())
}
