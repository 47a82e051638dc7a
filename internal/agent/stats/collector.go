package stats

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Defaults.
const (
	// DefaultWindow is about how far back a CPU rate looks: samples are
	// kept for this long (the kubelet's cAdvisor housekeeping is 10-15 s).
	DefaultWindow = 10 * time.Second
	// minWindow is the shortest span a rate is computed over: shorter
	// ones are mostly scheduling noise.
	minWindow = time.Second
)

// The kubelet's labels on CRI containers.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// Runtime is the part of CRI the collector reads.
type Runtime interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)
}

// NodeReader reads the node's cgroup subtree (a *Cgroup).
type NodeReader interface {
	Read() (CgroupUsage, error)
}

// Collector answers Summary and keeps the CPU samples rates are computed
// from. Run samples in the background so that the first scrape already
// has rates.
type Collector struct {
	nodeName string
	rt       Runtime
	node     NodeReader // nil: no node figures
	window   time.Duration
	now      func() time.Time
	log      *slog.Logger

	// mu serialises Summary: readings must reach the samples in the
	// order they were taken, or a later counter would look like a reset.
	mu sync.Mutex
	// samples of cumulative CPU per key (container ID, or "" for the
	// node), oldest first, none older than window.
	samples map[string][]sample
}

type sample struct {
	t   time.Time
	cum uint64
}

// Option configures a Collector.
type Option func(*Collector)

// WithWindow sets how long samples are kept (default DefaultWindow).
func WithWindow(d time.Duration) Option { return func(c *Collector) { c.window = d } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(c *Collector) { c.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Collector) { c.log = l } }

// NewCollector returns a collector of nodeName's figures: containers'
// through rt, the node's through node (nil: none).
func NewCollector(nodeName string, rt Runtime, node NodeReader, opts ...Option) *Collector {
	c := &Collector{nodeName: nodeName, rt: rt, node: node, window: DefaultWindow, now: time.Now,
		log: slog.New(slog.DiscardHandler), samples: map[string][]sample{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Run samples every half window until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(max(c.window/2, minWindow))
	defer t.Stop()
	for {
		if _, err := c.Summary(ctx); err != nil && ctx.Err() == nil {
			c.log.Debug("stats sample failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Summary reads the node and its running containers now.
func (c *Collector) Summary(ctx context.Context) (*Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	running, err := c.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	live := map[string]bool{}
	for _, ct := range running {
		live[ct.Id] = true
	}
	all, err := c.rt.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	now := c.now()
	sum := &Summary{Node: NodeStats{NodeName: c.nodeName}, Pods: []PodStats{}}
	seen := map[string]bool{"": true}
	pods := map[string]*PodStats{}
	for _, st := range all {
		a := st.GetAttributes()
		if a == nil || !live[a.Id] || a.Labels[labelPodUID] == "" {
			continue
		}
		seen[a.Id] = true
		uid := a.Labels[labelPodUID]
		p := pods[uid]
		if p == nil {
			p = &PodStats{PodRef: PodReference{Name: a.Labels[labelPodName], Namespace: a.Labels[labelPodNamespace], UID: uid}}
			pods[uid] = p
		}
		name := a.Labels[labelContainerName]
		if name == "" && a.Metadata != nil {
			name = a.Metadata.Name
		}
		cs := ContainerStats{Name: name}
		if cpu := st.GetCpu(); cpu != nil && cpu.UsageCoreNanoSeconds != nil {
			t := now
			if cpu.Timestamp > 0 {
				t = time.Unix(0, cpu.Timestamp)
			}
			cs.CPU = c.cpu(a.Id, t, cpu.UsageCoreNanoSeconds.Value)
		}
		if mem := st.GetMemory(); mem != nil && mem.WorkingSetBytes != nil {
			t := now
			if mem.Timestamp > 0 {
				t = time.Unix(0, mem.Timestamp)
			}
			ms := &MemoryStats{Time: metav1.NewTime(t), WorkingSetBytes: ptr(mem.WorkingSetBytes.Value)}
			if mem.UsageBytes != nil {
				ms.UsageBytes = ptr(mem.UsageBytes.Value)
			}
			cs.Memory = ms
		}
		p.Containers = append(p.Containers, cs)
	}
	for _, p := range pods {
		slices.SortFunc(p.Containers, func(a, b ContainerStats) int { return cmp.Compare(a.Name, b.Name) })
		p.Sum()
		sum.Pods = append(sum.Pods, *p)
	}
	slices.SortFunc(sum.Pods, func(a, b PodStats) int {
		if n := cmp.Compare(a.PodRef.Namespace, b.PodRef.Namespace); n != 0 {
			return n
		}
		return cmp.Compare(a.PodRef.Name, b.PodRef.Name)
	})
	if c.node != nil {
		u, err := c.node.Read()
		if err != nil {
			c.log.Debug("node cgroup unreadable", "err", err)
		} else {
			sum.Node.CPU = c.cpu("", now, u.CPUNanoSeconds)
			sum.Node.Memory = &MemoryStats{Time: metav1.NewTime(now), UsageBytes: ptr(u.UsageBytes), WorkingSetBytes: ptr(u.WorkingSetBytes)}
		}
	}
	// Forget containers that are gone.
	for k := range c.samples {
		if !seen[k] {
			delete(c.samples, k)
		}
	}
	return sum, nil
}

// cpu records a cumulative reading of key and returns it with the rate
// since the oldest sample kept. Callers hold mu.
func (c *Collector) cpu(key string, t time.Time, cum uint64) *CPUStats {
	out := &CPUStats{Time: metav1.NewTime(t), UsageCoreNanoSeconds: ptr(cum)}
	ss := c.samples[key]
	// A counter that went back is a new container (or cgroup) under the
	// same key: start over.
	if len(ss) > 0 && cum < ss[len(ss)-1].cum {
		ss = nil
	}
	if len(ss) > 0 {
		first := ss[0]
		if dt := t.Sub(first.t); dt >= minWindow {
			rate := uint64(float64(cum-first.cum) / dt.Seconds())
			out.UsageNanoCores = &rate
			out.Window = &metav1.Duration{Duration: dt}
		}
	}
	if len(ss) == 0 || t.Sub(ss[len(ss)-1].t) >= minWindow {
		ss = append(ss, sample{t, cum})
	}
	// Keep the newest sample at least window old as the rate's start.
	for len(ss) > 1 && t.Sub(ss[1].t) >= c.window {
		ss = ss[1:]
	}
	c.samples[key] = ss
	return out
}

func ptr(v uint64) *uint64 { return &v }
