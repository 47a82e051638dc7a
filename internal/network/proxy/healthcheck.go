package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// healthCheck is what a service's healthCheckNodePort answers: how many
// ready endpoints it has on this node.
type healthCheck struct {
	service types.NamespacedName
	local   int
}

// healthServer serves the health check node ports as kube-proxy does: on
// every address of the node, GET any path answers 200 while the service
// has a ready endpoint on this node and 503 when not, with
// {"service": {"namespace", "name"}, "localEndpoints": N,
// "serviceProxyHealthy": true}. A load balancer sends a service's
// traffic to the nodes that answer 200.
type healthServer struct {
	log *slog.Logger

	mu      sync.Mutex
	checks  map[int]healthCheck          // by port
	ports   map[types.NamespacedName]int // by service
	servers map[int]*http.Server
}

func newHealthServer(log *slog.Logger) *healthServer {
	return &healthServer{log: log, checks: map[int]healthCheck{}, ports: map[types.NamespacedName]int{}, servers: map[int]*http.Server{}}
}

// sync takes the health checks of the services in inputs, those a Sync
// wrote (all of them for a full one, which forgets any other), counting
// their ready endpoints on node; then it listens on new ports, in the calling thread's network
// namespace, and closes those no longer wanted. A port that cannot be
// listened on is logged and tried again at the next sync.
func (h *healthServer) sync(full bool, inputs map[types.NamespacedName]input, node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if full {
		h.checks, h.ports = map[int]healthCheck{}, map[types.NamespacedName]int{}
	}
	for key, in := range inputs {
		if port, ok := h.ports[key]; ok {
			delete(h.checks, port)
			delete(h.ports, key)
		}
		if in.svc == nil || in.svc.healthCheck == 0 {
			continue
		}
		local := map[netip.Addr]bool{}
		for _, s := range in.slices {
			for _, e := range s.endpoints {
				if e.node == node {
					local[e.addr] = true
				}
			}
		}
		h.checks[in.svc.healthCheck] = healthCheck{key, len(local)}
		h.ports[key] = in.svc.healthCheck
	}
	for port, srv := range h.servers {
		if _, ok := h.checks[port]; !ok {
			srv.Close()
			delete(h.servers, port)
		}
	}
	for port, c := range h.checks {
		if h.servers[port] != nil {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			h.log.Warn("service proxy: health check node port not served", "port", port, "service", c.service, "err", err)
			continue
		}
		srv := &http.Server{Handler: h.handler(port), ReadHeaderTimeout: 5 * time.Second}
		h.servers[port] = srv
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				h.log.Warn("service proxy: health check node port stopped", "port", port, "err", err)
			}
		}()
	}
}

func (h *healthServer) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		c, ok := h.checks[port]
		h.mu.Unlock()
		if !ok {
			http.Error(w, "no service on this port", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(c.local))
		if c.local == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"service":             map[string]string{"namespace": c.service.Namespace, "name": c.service.Name},
			"localEndpoints":      c.local,
			"serviceProxyHealthy": true,
		})
	})
}

// close stops every health check server.
func (h *healthServer) close(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for port, srv := range h.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("health check node port %d: %w", port, err))
		}
		delete(h.servers, port)
	}
	return errors.Join(errs...)
}
