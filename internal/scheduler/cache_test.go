package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// nodeState is what the tests compare of a nodeInfo.
type nodeState struct {
	MilliCPU int64
	Pods     int64
	Listed   bool
}

func cacheState(c *cache) map[string]nodeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]nodeState{}
	for name, n := range c.nodes {
		out[name] = nodeState{MilliCPU: n.requested.milliCPU, Pods: n.pods, Listed: n.idx >= 0}
	}
	return out
}

func bound(p *corev1.Pod, node string) *corev1.Pod {
	p = p.DeepCopy()
	p.Spec.NodeName = node
	return p
}

func TestCache(t *testing.T) {
	cpu := func(name, q string) *corev1.Pod { return makePod(name, withContainer("cpu", q)) }
	assume := func(c *cache, pod *corev1.Pod, node string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.assumeLocked(newPodInfo(pod), c.nodes[node])
	}
	t0 := time.Unix(1_000_000, 0)
	tests := []struct {
		name string
		run  func(c *cache)
		want map[string]nodeState
	}{
		{
			name: "bound pods add up",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.setBoundPod(bound(cpu("b", "500m"), "n1"))
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1500, Pods: 2, Listed: true}},
		},
		{
			name: "status updates of a bound pod change nothing",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				p := bound(cpu("a", "1"), "n1")
				c.setBoundPod(p)
				p = p.DeepCopy()
				p.Status.Phase = corev1.PodRunning
				c.setBoundPod(p)
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "resized bound pod",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.setBoundPod(bound(cpu("a", "2"), "n1"))
			},
			want: map[string]nodeState{"n1": {MilliCPU: 2000, Pods: 1, Listed: true}},
		},
		{
			name: "assumed then confirmed counts once",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				assume(c, cpu("a", "1"), "n1")
				c.finishBinding("default/a", t0)
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.expire(t0.Add(time.Hour)) // confirmed: never expires
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "forgotten assumption frees room",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				assume(c, cpu("a", "1"), "n1")
				c.forget("default/a", "n1")
			},
			want: map[string]nodeState{"n1": {Listed: true}},
		},
		{
			name: "forget keeps a binding the informer confirmed",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				assume(c, cpu("a", "1"), "n1")
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.forget("default/a", "n1")
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "informer binds elsewhere than assumed",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				c.setNode(makeNode("n2", "4", "4Gi", 10))
				assume(c, cpu("a", "1"), "n1")
				c.setBoundPod(bound(cpu("a", "1"), "n2"))
			},
			want: map[string]nodeState{"n1": {Listed: true}, "n2": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "unconfirmed assumption expires after its bind",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				assume(c, cpu("a", "1"), "n1")
				assume(c, cpu("b", "1"), "n1") // bind still in flight: no expiry yet
				c.finishBinding("default/a", t0)
				c.expire(t0.Add(time.Second))
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "pod seen before its node makes a ghost",
			run: func(c *cache) {
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1}},
		},
		{
			name: "ghost keeps usage when the node returns",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.removeNode("n1")
				c.setNode(makeNode("n1", "4", "4Gi", 10))
			},
			want: map[string]nodeState{"n1": {MilliCPU: 1000, Pods: 1, Listed: true}},
		},
		{
			name: "ghost goes with its last pod",
			run: func(c *cache) {
				c.setNode(makeNode("n1", "4", "4Gi", 10))
				c.setNode(makeNode("n2", "4", "4Gi", 10))
				c.setBoundPod(bound(cpu("a", "1"), "n1"))
				c.removeNode("n1")
				c.removePod("default/a")
			},
			want: map[string]nodeState{"n2": {Listed: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			tc.run(c)
			if diff := cmp.Diff(tc.want, cacheState(c)); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
			for i, n := range c.list {
				if n.idx != i {
					t.Errorf("node %s at list position %d has idx %d", n.name, i, n.idx)
				}
			}
		})
	}
}

func TestSetNodeReportsRelevantChanges(t *testing.T) {
	base := makeNode("n1", "4", "4Gi", 10, withLabel("zone", "a"))
	tests := []struct {
		name   string
		change func(n *corev1.Node)
		want   bool
	}{
		{name: "heartbeat only", change: func(n *corev1.Node) {
			n.Status.Conditions[0].Message = "kubelet is posting ready status"
		}},
		{name: "became not ready", change: func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }, want: true},
		{name: "cordoned", change: func(n *corev1.Node) { n.Spec.Unschedulable = true }, want: true},
		{name: "label added", change: func(n *corev1.Node) { n.Labels["disk"] = "ssd" }, want: true},
		{name: "taint added", change: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
		}, want: true},
		{name: "allocatable grew", change: func(n *corev1.Node) { withAllocatable(corev1.ResourceCPU, "8")(n) }, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			c.setNode(base)
			n := base.DeepCopy()
			tc.change(n)
			if got := c.setNode(n); got != tc.want {
				t.Errorf("setNode = %v, want %v", got, tc.want)
			}
		})
	}
}
