// Package resourcemetrics is the API server's built-in metrics-server: it
// scrapes every node agent's /stats/summary (package agent/stats) through
// the same client certificate and address the server proxies logs and exec
// with, every Interval, and answers metrics.k8s.io/v1beta1 NodeMetrics and
// PodMetrics from the last scrape (apiserver.ResourceMetricsSource). A
// request finding figures older than MaxAge scrapes at once (one scrape at
// a time; others wait for it).
package resourcemetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"wharf.dev/wharf/internal/agent/stats"
)

// Defaults.
const (
	// DefaultInterval is metrics-server's --metric-resolution.
	DefaultInterval = 15 * time.Second
	// scrapeTimeout bounds one node's scrape.
	scrapeTimeout = 5 * time.Second
	// summaryPath is the agent's endpoint.
	summaryPath = "/stats/summary"
)

// Scraper collects and serves resource metrics.
type Scraper struct {
	log       *slog.Logger
	transport http.RoundTripper
	interval  time.Duration
	maxAge    time.Duration
	now       func() time.Time

	mu    sync.Mutex // guards nodes and pods below
	nodes corelisters.NodeLister
	pods  corelisters.PodLister

	scrapeMu sync.Mutex // one scrape at a time
	last     time.Time  // when the figures below were taken
	byNode   map[string]*stats.Summary
}

// Option configures a Scraper.
type Option func(*Scraper)

// WithInterval sets how often agents are scraped (default DefaultInterval);
// figures older than the interval are refreshed on request.
func WithInterval(d time.Duration) Option { return func(s *Scraper) { s.interval = d } }

// New returns a scraper reaching agents through transport (it carries the
// TLS trust and the client certificate agents require). Start it with
// SetListers and Run.
func New(log *slog.Logger, transport http.RoundTripper, opts ...Option) *Scraper {
	s := &Scraper{log: log, transport: transport, interval: DefaultInterval, now: time.Now, byNode: map[string]*stats.Summary{}}
	for _, o := range opts {
		o(s)
	}
	if s.maxAge == 0 {
		s.maxAge = s.interval
	}
	return s
}

// SetListers gives the scraper the nodes to scrape and the pods whose
// labels metrics carry.
func (s *Scraper) SetListers(nodes corelisters.NodeLister, pods corelisters.PodLister) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes, s.pods = nodes, pods
}

func (s *Scraper) listers() (corelisters.NodeLister, corelisters.PodLister) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes, s.pods
}

// Run scrapes every interval until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.Scrape(ctx)
	}
}

// Scrape reads every node's summary now, in parallel, and keeps them. A
// node that cannot be reached loses its figures, as with metrics-server.
func (s *Scraper) Scrape(ctx context.Context) {
	s.scrapeMu.Lock()
	defer s.scrapeMu.Unlock()
	s.scrapeLocked(ctx)
}

func (s *Scraper) scrapeLocked(ctx context.Context) {
	nodes, _ := s.listers()
	if nodes == nil {
		return
	}
	all, err := nodes.List(labels.Everything())
	if err != nil {
		s.log.Warn("list nodes to scrape", "err", err)
		return
	}
	start := s.now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[string]*stats.Summary{}
	for _, n := range all {
		host := agentHost(n)
		if host == "" {
			continue // no agent to ask (a simulated node without usage)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum, err := s.scrapeNode(ctx, host)
			if err != nil {
				s.log.Debug("scrape failed", "node", n.Name, "err", err)
				return
			}
			mu.Lock()
			got[n.Name] = sum
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.byNode, s.last = got, start
	s.log.Debug("scraped nodes", "nodes", len(got), "duration", s.now().Sub(start))
}

func (s *Scraper) scrapeNode(ctx context.Context, host string) (*stats.Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+summaryPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", host, resp.Status)
	}
	var sum stats.Summary
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", host, err)
	}
	return &sum, nil
}

// fresh returns the figures, scraping first if they are older than maxAge.
func (s *Scraper) fresh(ctx context.Context) map[string]*stats.Summary {
	s.scrapeMu.Lock()
	defer s.scrapeMu.Unlock()
	if s.now().Sub(s.last) > s.maxAge {
		s.scrapeLocked(ctx)
	}
	return s.byNode
}

// NodeMetrics is apiserver.ResourceMetricsSource's.
func (s *Scraper) NodeMetrics(ctx context.Context) ([]metricsv1beta1.NodeMetrics, error) {
	byNode := s.fresh(ctx)
	nodes, _ := s.listers()
	var out []metricsv1beta1.NodeMetrics
	for name, sum := range byNode {
		cpu, mem := sum.Node.CPU, sum.Node.Memory
		if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
			continue
		}
		m := metricsv1beta1.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(s.now())},
			Timestamp:  cpu.Time,
			Window:     window(cpu),
			Usage:      usage(*cpu.UsageNanoCores, *mem.WorkingSetBytes),
		}
		if nodes != nil {
			n, err := nodes.Get(name)
			if err != nil {
				continue // deleted since
			}
			m.Labels = n.Labels
		}
		out = append(out, m)
	}
	sortByName(out, func(m metricsv1beta1.NodeMetrics) string { return m.Name })
	return out, nil
}

// PodMetrics is apiserver.ResourceMetricsSource's: pods whose every
// running container has figures, with the pod's labels.
func (s *Scraper) PodMetrics(ctx context.Context, namespace string) ([]metricsv1beta1.PodMetrics, error) {
	byNode := s.fresh(ctx)
	_, pods := s.listers()
	var out []metricsv1beta1.PodMetrics
	for _, sum := range byNode {
		for _, ps := range sum.Pods {
			if namespace != "" && ps.PodRef.Namespace != namespace {
				continue
			}
			m, ok := podMetrics(ps, s.now())
			if !ok {
				continue
			}
			if pods != nil {
				pod, err := pods.Pods(ps.PodRef.Namespace).Get(ps.PodRef.Name)
				if err != nil || string(pod.UID) != ps.PodRef.UID {
					continue // gone, or a new pod of the same name
				}
				m.Labels = pod.Labels
			}
			out = append(out, m)
		}
	}
	sortByName(out, func(m metricsv1beta1.PodMetrics) string { return m.Namespace + "/" + m.Name })
	return out, nil
}

func podMetrics(ps stats.PodStats, now time.Time) (metricsv1beta1.PodMetrics, bool) {
	m := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: ps.PodRef.Name, Namespace: ps.PodRef.Namespace, CreationTimestamp: metav1.NewTime(now)},
	}
	if len(ps.Containers) == 0 {
		return m, false
	}
	for _, c := range ps.Containers {
		if c.CPU == nil || c.CPU.UsageNanoCores == nil || c.Memory == nil || c.Memory.WorkingSetBytes == nil {
			return m, false
		}
		if c.CPU.Time.After(m.Timestamp.Time) {
			m.Timestamp, m.Window = c.CPU.Time, window(c.CPU)
		}
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{
			Name: c.Name, Usage: usage(*c.CPU.UsageNanoCores, *c.Memory.WorkingSetBytes),
		})
	}
	return m, true
}

func usage(nanocores, workingSet uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanocores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(workingSet), resource.BinarySI),
	}
}

func window(cpu *stats.CPUStats) metav1.Duration {
	if cpu.Window == nil {
		return metav1.Duration{}
	}
	return metav1.Duration{Duration: cpu.Window.Duration.Round(time.Millisecond)}
}

// agentHost is where a node's agent listens: its InternalIP (what agents
// sign their serving certificates for) and kubelet port; "" if none.
func agentHost(n *corev1.Node) string {
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return ""
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(port)))
			}
		}
	}
	return ""
}

func sortByName[T any](items []T, key func(T) string) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}
