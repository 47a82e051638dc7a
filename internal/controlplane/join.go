package controlplane

import "wharf.dev/wharf/internal/apiserver"

// joinRoutes serve agents joining the cluster.
func (s *Server) joinRoutes() []apiserver.Route { return nil }
