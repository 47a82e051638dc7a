package stats

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/cgroups"
)

// fakeRuntime serves fixed containers whose CPU counters the test moves.
type fakeRuntime struct {
	running map[string]bool
	stats   []*runtimeapi.ContainerStats
}

func (f *fakeRuntime) ListContainers(_ context.Context, _ *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	var out []*runtimeapi.Container
	for id, ok := range f.running {
		if ok {
			out = append(out, &runtimeapi.Container{Id: id})
		}
	}
	return out, nil
}

func (f *fakeRuntime) ListContainerStats(_ context.Context, _ *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	return f.stats, nil
}

func containerStats(id, pod, container string, cpuNs, ws uint64) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Labels: map[string]string{
			labelPodName: pod, labelPodNamespace: "default", labelPodUID: "uid-" + pod, labelContainerName: container,
		}},
		Cpu:    &runtimeapi.CpuUsage{UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpuNs}},
		Memory: &runtimeapi.MemoryUsage{WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws}, UsageBytes: &runtimeapi.UInt64Value{Value: ws + 100}},
	}
}

type fakeNode struct{ u CgroupUsage }

func (f *fakeNode) Read() (CgroupUsage, error) { return f.u, nil }

func TestCollectorRates(t *testing.T) {
	now := time.Unix(1000, 0)
	rt := &fakeRuntime{running: map[string]bool{"a": true, "b": true, "dead": false}}
	node := &fakeNode{}
	c := NewCollector("n1", rt, node, WithClock(func() time.Time { return now }), WithWindow(10*time.Second))
	set := func(a, b, n uint64) {
		rt.stats = []*runtimeapi.ContainerStats{
			containerStats("a", "web", "app", a, 1<<20),
			containerStats("b", "web", "side", b, 2<<20),
			containerStats("dead", "old", "app", 5, 5),
		}
		node.u = CgroupUsage{CPUNanoSeconds: n, UsageBytes: 10 << 20, WorkingSetBytes: 8 << 20}
	}
	set(0, 0, 0)
	sum, err := c.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Pods) != 1 || sum.Pods[0].CPU != nil || sum.Node.CPU.UsageNanoCores != nil {
		t.Fatalf("first sample: want one pod without rates, got %+v", sum)
	}
	if got := *sum.Pods[0].Memory.WorkingSetBytes; got != 3<<20 {
		t.Errorf("pod working set = %d, want %d", got, 3<<20)
	}
	// 5 s later: container a used half a core, b a quarter, the node 1.5.
	now = now.Add(5 * time.Second)
	set(2_500_000_000, 1_250_000_000, 7_500_000_000)
	if sum, err = c.Summary(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := sum.Pods[0]
	want := map[string]uint64{"app": 500_000_000, "side": 250_000_000}
	for _, ct := range p.Containers {
		if got := *ct.CPU.UsageNanoCores; got != want[ct.Name] {
			t.Errorf("container %s: %d nanocores, want %d", ct.Name, got, want[ct.Name])
		}
	}
	if got := *p.CPU.UsageNanoCores; got != 750_000_000 {
		t.Errorf("pod: %d nanocores, want 750000000", got)
	}
	if got := *sum.Node.CPU.UsageNanoCores; got != 1_500_000_000 {
		t.Errorf("node: %d nanocores, want 1500000000", got)
	}
	// 20 s on, a at one core since: the rate covers the last window, not
	// the whole life.
	now = now.Add(10 * time.Second)
	set(12_500_000_000, 1_250_000_000, 7_500_000_000)
	c.Summary(context.Background())
	now = now.Add(10 * time.Second)
	set(22_500_000_000, 1_250_000_000, 7_500_000_000)
	if sum, err = c.Summary(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ct := range sum.Pods[0].Containers {
		if ct.Name == "app" && *ct.CPU.UsageNanoCores != 1_000_000_000 {
			t.Errorf("app after a steady window: %d nanocores, want 1e9 (window %v)", *ct.CPU.UsageNanoCores, ct.CPU.Window)
		}
	}
	// A restarted container's counter goes back: no negative rate.
	now = now.Add(5 * time.Second)
	set(1, 1_250_000_000, 7_500_000_000)
	if sum, err = c.Summary(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum.Pods[0].CPU != nil {
		t.Errorf("counter reset: want no pod rate until a new window, got %d", *sum.Pods[0].CPU.UsageNanoCores)
	}
}

func TestCgroupRead(t *testing.T) {
	tests := []struct {
		name  string
		hs    func(root string) []cgroups.Hierarchy
		files map[string]string
		want  CgroupUsage
	}{
		{
			name: "v1",
			hs: func(root string) []cgroups.Hierarchy {
				return []cgroups.Hierarchy{
					{Dir: filepath.Join(root, "cpuacct"), Opts: map[string]bool{"cpuacct": true}},
					{Dir: filepath.Join(root, "memory"), Opts: map[string]bool{"memory": true}},
					{Dir: filepath.Join(root, "unified"), V2: true, Opts: map[string]bool{}},
				}
			},
			files: map[string]string{
				"cpuacct/wharf/n1/cpuacct.usage":        "123456789\n",
				"memory/wharf/n1/memory.usage_in_bytes": "1000000\n",
				"memory/wharf/n1/memory.stat":           "cache 5\ninactive_file 1\ntotal_inactive_file 250000\n",
			},
			want: CgroupUsage{CPUNanoSeconds: 123456789, UsageBytes: 1000000, WorkingSetBytes: 750000},
		},
		{
			name: "v2",
			hs: func(root string) []cgroups.Hierarchy {
				return []cgroups.Hierarchy{{Dir: filepath.Join(root, "unified"), V2: true, Opts: map[string]bool{}}}
			},
			files: map[string]string{
				"unified/wharf/n1/cpu.stat":       "usage_usec 42\nuser_usec 40\n",
				"unified/wharf/n1/memory.current": "4096\n",
				"unified/wharf/n1/memory.stat":    "anon 1\ninactive_file 8192\n",
			},
			want: CgroupUsage{CPUNanoSeconds: 42000, UsageBytes: 4096, WorkingSetBytes: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for f, body := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cg, err := newCgroup(tt.hs(root), "/wharf/n1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := cg.Read()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Read() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 42\nuser_usec 40\n"))
	f.Add([]byte("total_inactive_file -1\n\n x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseKeyed(b); err != nil {
			t.Skip()
		}
	})
}
