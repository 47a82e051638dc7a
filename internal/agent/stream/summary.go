package stream

import (
	"context"
	"encoding/json"
	"net/http"

	"wharf.dev/wharf/internal/agent/stats"
)

// StatsSource answers the node's resource usage summary (a *stats.Collector).
type StatsSource interface {
	Summary(ctx context.Context) (*stats.Summary, error)
}

// serveSummary is the kubelet's /stats/summary: the node's and its
// running containers' CPU and memory, which the API server scrapes for
// metrics.k8s.io.
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		s.writeError(w, &notFoundError{"resource usage of this node"})
		return
	}
	sum, err := s.cfg.Stats.Summary(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sum)
}
