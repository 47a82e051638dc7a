package simnode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/agent/stats"
)

// Usage annotations: each container of a running pod on a simulated node
// with Stats set reports this CPU (a quantity of cores, e.g. "250m") and
// memory working set (e.g. "64Mi"). Change them on a running pod
// (kubectl annotate --overwrite) to change its usage from the next scrape.
const (
	CPUUsageAnnotation    = "sim.wharf.dev/cpu-usage"
	MemoryUsageAnnotation = "sim.wharf.dev/memory-usage"
)

// statsWindow is the span simulated CPU rates are reported over.
const statsWindow = 10 * time.Second

// StatsConfig makes each simulated node serve /stats/summary as an agent
// does, on 127.0.0.1 (registered as its InternalIP and kubelet port), with
// the usage its pods' annotations give. Cert is the serving certificate
// (for 127.0.0.1, signed by the cluster CA); ClientCAs verify the API
// server's client certificate.
type StatsConfig struct {
	Cert      tls.Certificate
	ClientCAs *x509.CertPool
}

// statsServer serves one simulated node's summary.
type statsServer struct {
	node    string
	pods    cache.Indexer
	started time.Time
}

// listenStats opens a node's stats listener; serveStats serves it.
func listenStats() (net.Listener, int32, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, fmt.Errorf("simulated node stats: %w", err)
	}
	return ln, int32(ln.Addr().(*net.TCPAddr).Port), nil
}

func serveStats(ctx context.Context, log *slog.Logger, cfg *StatsConfig, ln net.Listener, s *statsServer) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats/summary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.summary(time.Now()))
	})
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cfg.Cert}, ClientCAs: cfg.ClientCAs,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		log.Warn("simulated node stats server stopped", "node", s.node, "err", err)
	}
}

// summary reports the node's running pods at the usage their annotations
// give, and the node as their sum.
func (s *statsServer) summary(now time.Time) *stats.Summary {
	t := metav1.NewTime(now)
	win := &metav1.Duration{Duration: statsWindow}
	sum := &stats.Summary{Node: stats.NodeStats{NodeName: s.node}, Pods: []stats.PodStats{}}
	var nodeCores, nodeMem uint64
	for _, obj := range s.pods.List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName != s.node || pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
			continue
		}
		cores := quantity(pod.Annotations[CPUUsageAnnotation], func(q resource.Quantity) uint64 { return uint64(q.ScaledValue(resource.Nano)) })
		mem := quantity(pod.Annotations[MemoryUsageAnnotation], func(q resource.Quantity) uint64 { return uint64(q.Value()) })
		started := s.started
		if pod.Status.StartTime != nil {
			started = pod.Status.StartTime.Time
		}
		cum := uint64(float64(cores) * max(now.Sub(started), 0).Seconds())
		ps := stats.PodStats{PodRef: stats.PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)}}
		for _, c := range pod.Spec.Containers {
			ps.Containers = append(ps.Containers, stats.ContainerStats{
				Name:   c.Name,
				CPU:    &stats.CPUStats{Time: t, Window: win, UsageNanoCores: ptrTo(cores), UsageCoreNanoSeconds: ptrTo(cum)},
				Memory: &stats.MemoryStats{Time: t, UsageBytes: ptrTo(mem), WorkingSetBytes: ptrTo(mem)},
			})
			nodeCores += cores
			nodeMem += mem
		}
		ps.Sum()
		sum.Pods = append(sum.Pods, ps)
	}
	cum := uint64(float64(nodeCores) * now.Sub(s.started).Seconds())
	sum.Node.CPU = &stats.CPUStats{Time: t, Window: win, UsageNanoCores: ptrTo(nodeCores), UsageCoreNanoSeconds: ptrTo(cum)}
	sum.Node.Memory = &stats.MemoryStats{Time: t, UsageBytes: ptrTo(nodeMem), WorkingSetBytes: ptrTo(nodeMem)}
	return sum
}

// quantity parses an annotation's quantity; 0 if absent or malformed.
func quantity(v string, conv func(resource.Quantity) uint64) uint64 {
	if v == "" {
		return 0
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		return 0
	}
	return conv(q)
}

func ptrTo(v uint64) *uint64 { return &v }
