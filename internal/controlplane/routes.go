package controlplane

import "wharf.dev/wharf/internal/apiserver"

// routes are the handlers served beside the API: the image registry
// (registry.go), the agents' join endpoints (join.go) and etcd snapshots
// (snapshot.go).
func (s *Server) routes() []apiserver.Route {
	return append(append(s.registryRoutes(), s.joinRoutes()...), s.snapshotRoutes()...)
}
