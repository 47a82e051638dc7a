package controlplane

import "wharf.dev/wharf/internal/apiserver"

// registryRoutes serves the cluster's image registry under /v2/.
func (s *Server) registryRoutes() []apiserver.Route { return nil }
