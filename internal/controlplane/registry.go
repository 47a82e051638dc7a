package controlplane

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/registry"
)

// registryRoutes serves the cluster's image registry under /v2/. Its
// images live in etcd (registry.EtcdStore), which every server of the
// cluster shares: an image pushed through one master is pulled through
// any other, also once the first is gone, and etcd snapshots hold the
// images with the rest of the cluster. <data-dir>/registry keeps
// uploads in progress and a copy of each blob read, so pulls cost what
// they did when the disk held everything. The API server has
// authenticated the caller by then; registryAccess decides what the
// caller may do.
func (s *Server) registryRoutes(ctx context.Context) []apiserver.Route {
	log := s.log.With("component", "registry")
	reg := registry.New(filepath.Join(s.opts.DataDir, "registry"),
		registry.WithLogger(log),
		registry.WithAuthorizer(registryAccess),
		registry.WithShared(registry.NewEtcdStore(s.client, registry.DefaultEtcdPrefix)))
	s.goRun(func() error {
		// Images a server kept on its disk alone, before shared storage.
		blobs, metas, err := reg.ImportLocal(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("importing the registry's directory into etcd", "err", err)
		case blobs+metas > 0:
			log.Info("imported the registry's directory into etcd", "blobs", blobs, "tags and revisions", metas)
		}
		return nil
	})
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
