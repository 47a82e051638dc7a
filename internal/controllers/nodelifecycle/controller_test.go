package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

const (
	ready    = "MemoryPressure=False Ready=True"
	notReady = "MemoryPressure=False Ready=False"
	unknown  = "MemoryPressure=Unknown Ready=Unknown"
)

var (
	live     = agent{renew: true, ready: v1.ConditionTrue}
	dead     = agent{renew: false, ready: v1.ConditionTrue}
	sick     = agent{renew: true, ready: v1.ConditionFalse}
	healthy  = nodeView{Conditions: ready}
	lost     = nodeView{Conditions: unknown, Taints: []string{"unreachable:NoExecute", "unreachable:NoSchedule"}}
	lostOnly = nodeView{Conditions: unknown, Taints: []string{"unreachable:NoSchedule"}}
)

// step changes agents, lets time pass, then checks nodes and pods.
type step struct {
	set      map[string]agent
	advance  time.Duration
	jump     bool // all at once: the controller was starved
	want     map[string]nodeView
	wantPods []string
}

func TestNodeLifecycle(t *testing.T) {
	tol := func(name, node string, secs *int64) *v1.Pod {
		return pod(name, node, tolerate(v1.TaintNodeUnreachable, secs), tolerate(v1.TaintNodeNotReady, secs))
	}
	// Passes run every 0.5 s from t0+0.5 s, when the controller first sees
	// every node; dead agents never renew after t0, so a dead node is
	// marked at the pass at t0+6 s (5.5 s unobserved > 5 s grace).
	tests := []struct {
		name         string
		agents       map[string]agent
		pods         []*v1.Pod
		serverRenews bool // live LISTs show renewals the watch never delivered
		steps        []step
		wantEvents   []string
	}{
		{
			name:   "lease renewed: stays ready",
			agents: map[string]agent{"n1": live, "n2": live},
			pods:   []*v1.Pod{pod("p", "n1")},
			steps: []step{
				{advance: 20 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"p"}},
			},
		},
		{
			name:   "lease stops: unknown and tainted after grace, pods evicted by their tolerations",
			agents: map[string]agent{"n1": dead, "n2": live},
			pods:   []*v1.Pod{pod("bare", "n1"), tol("tol3", "n1", ptr.To[int64](3)), tol("forever", "n1", nil), pod("other", "n2")},
			steps: []step{
				{advance: 5 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy},
					wantPods: []string{"bare", "forever", "other", "tol3"}},
				{advance: 1500 * time.Millisecond, want: map[string]nodeView{"n1": lost, "n2": healthy},
					wantPods: []string{"forever", "other", "tol3"}},
				{advance: 2 * time.Second, want: map[string]nodeView{"n1": lost, "n2": healthy}, // t0+8.5 s
					wantPods: []string{"forever", "other", "tol3"}},
				{advance: 1 * time.Second, want: map[string]nodeView{"n1": lost, "n2": healthy}, // t0+9.5 s: tol3 due at 9 s
					wantPods: []string{"forever", "other"}},
			},
			wantEvents: []string{"NodeNotReady", "TaintManagerEviction"},
		},
		{
			name:   "node reports Ready=False: not-ready taints, then recovers",
			agents: map[string]agent{"n1": live, "n2": live},
			pods:   []*v1.Pod{pod("bare", "n1"), tol("tol3", "n1", ptr.To[int64](3))},
			steps: []step{
				{set: map[string]agent{"n1": sick}, advance: 1 * time.Second,
					want: map[string]nodeView{"n1": {Conditions: notReady, Taints: []string{"not-ready:NoExecute", "not-ready:NoSchedule"}}, "n2": healthy},
					// The agent reported at t0+1 s; the taint dates from then.
					wantPods: []string{"tol3"}},
				{advance: 3500 * time.Millisecond, want: map[string]nodeView{"n1": {Conditions: notReady, Taints: []string{"not-ready:NoExecute", "not-ready:NoSchedule"}}, "n2": healthy},
					wantPods: nil},
				{set: map[string]agent{"n1": live}, advance: 1 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}},
			},
			wantEvents: []string{"NodeNotReady", "NodeReady", "TaintManagerEviction"},
		},
		{
			name:   "lease resumes: taints removed, tolerating pods stay",
			agents: map[string]agent{"n1": dead, "n2": live},
			pods:   []*v1.Pod{tol("forever", "n1", nil), tol("tol30", "n1", ptr.To[int64](30))},
			steps: []step{
				{advance: 7 * time.Second, want: map[string]nodeView{"n1": lost, "n2": healthy}, wantPods: []string{"forever", "tol30"}},
				{set: map[string]agent{"n1": live}, advance: 1 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy},
					wantPods: []string{"forever", "tol30"}},
				{advance: 40 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"forever", "tol30"}},
			},
			wantEvents: []string{"NodeNotReady", "NodeReady"},
		},
		{
			name:   "all nodes silent: nothing marked at first, then full disruption without eviction",
			agents: map[string]agent{"n1": dead, "n2": dead},
			pods:   []*v1.Pod{pod("a", "n1"), pod("b", "n2")},
			steps: []step{
				// Silence > grace: a stalled watch is as likely as dead nodes.
				{advance: 10 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"a", "b"}},
				// Silence > 2×grace and the server agrees: marked, but no NoExecute.
				{advance: 2 * time.Second, want: map[string]nodeView{"n1": lostOnly, "n2": lostOnly}, wantPods: []string{"a", "b"}},
				{advance: 20 * time.Second, want: map[string]nodeView{"n1": lostOnly, "n2": lostOnly}, wantPods: []string{"a", "b"}},
			},
			wantEvents: []string{"NodeNotReady"},
		},
		{
			name:   "all nodes not ready: no eviction until one is ready again",
			agents: map[string]agent{"n1": live, "n2": live},
			pods:   []*v1.Pod{pod("a", "n1"), pod("b", "n2")},
			steps: []step{
				{set: map[string]agent{"n1": sick, "n2": sick}, advance: 10 * time.Second,
					want: map[string]nodeView{
						"n1": {Conditions: notReady, Taints: []string{"not-ready:NoSchedule"}},
						"n2": {Conditions: notReady, Taints: []string{"not-ready:NoSchedule"}},
					},
					wantPods: []string{"a", "b"}},
				{set: map[string]agent{"n2": live}, advance: 1 * time.Second,
					want: map[string]nodeView{
						"n1": {Conditions: notReady, Taints: []string{"not-ready:NoExecute", "not-ready:NoSchedule"}},
						"n2": healthy,
					},
					wantPods: []string{"b"}},
			},
			wantEvents: []string{"NodeNotReady", "NodeReady", "TaintManagerEviction"},
		},
		{
			name:   "starved controller: a late pass marks nothing and credits the stall",
			agents: map[string]agent{"n1": dead, "n2": live},
			pods:   []*v1.Pod{pod("bare", "n1")},
			steps: []step{
				{advance: 2 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"bare"}},
				// 10 s without a pass: n1 looks 11.5 s old, but the controller was not looking.
				{jump: true, advance: 10 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"bare"}},
				// Credited: n1 counts as last seen at t0+10 s, so it is not late at t0+15 s ...
				{advance: 3 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"bare"}},
				// ... but is at t0+15.5 s.
				{advance: 1 * time.Second, want: map[string]nodeView{"n1": lost, "n2": healthy}, wantPods: nil},
			},
			wantEvents: []string{"NodeNotReady", "TaintManagerEviction"},
		},
		{
			name:         "stalled watch: server has renewals the cache lacks, nothing marked",
			agents:       map[string]agent{"n1": dead, "n2": dead},
			pods:         []*v1.Pod{pod("a", "n1")},
			serverRenews: true,
			steps: []step{
				{advance: 20 * time.Second, want: map[string]nodeView{"n1": healthy, "n2": healthy}, wantPods: []string{"a"}},
			},
		},
		{
			name:   "single node dies: marked once the server confirms the silence, then evicted",
			agents: map[string]agent{"n1": dead},
			pods:   []*v1.Pod{pod("bare", "n1"), tol("tol3", "n1", ptr.To[int64](3))},
			steps: []step{
				{advance: 10 * time.Second, want: map[string]nodeView{"n1": healthy}, wantPods: []string{"bare", "tol3"}},
				// Marked at t0+11 s.
				{advance: 2 * time.Second, want: map[string]nodeView{"n1": lost}, wantPods: []string{"tol3"}},
				{advance: 3 * time.Second, want: map[string]nodeView{"n1": lost}, wantPods: nil},
			},
			wantEvents: []string{"NodeNotReady", "TaintManagerEviction"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agents := map[string]agent{}
			for k, v := range tt.agents {
				agents[k] = v
			}
			h := newHarness(t, agents, tt.pods)
			if tt.serverRenews {
				h.client.PrependReactor("list", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
					list := &coordinationv1.LeaseList{}
					for name := range agents {
						list.Items = append(list.Items, coordinationv1.Lease{
							ObjectMeta: metav1.ObjectMeta{Namespace: v1.NamespaceNodeLease, Name: name},
							Spec:       coordinationv1.LeaseSpec{RenewTime: ptr.To(metav1.NewMicroTime(h.clk.Now()))},
						})
					}
					return true, list, nil
				})
			}
			for i, s := range tt.steps {
				for k, v := range s.set {
					agents[k] = v
				}
				if s.jump {
					h.jump(s.advance)
				} else {
					h.advance(s.advance)
				}
				at := h.clk.Now().Sub(t0)
				if diff := cmp.Diff(s.want, h.nodes()); diff != "" {
					t.Errorf("step %d (t0+%v): nodes (-want +got):\n%s", i, at, diff)
				}
				if diff := cmp.Diff(s.wantPods, h.pods()); diff != "" {
					t.Errorf("step %d (t0+%v): pods (-want +got):\n%s", i, at, diff)
				}
			}
			if diff := cmp.Diff(tt.wantEvents, h.eventReasons()); diff != "" {
				t.Errorf("event reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodsOnUnreachableNodeMarkedNotReady(t *testing.T) {
	h := newHarness(t, map[string]agent{"n1": dead, "n2": live}, []*v1.Pod{
		pod("stays", "n1", tolerate(v1.TaintNodeUnreachable, nil)), pod("other", "n2"),
	})
	h.advance(5 * time.Second)
	want := map[string]v1.ConditionStatus{"stays": v1.ConditionTrue, "other": v1.ConditionTrue}
	if diff := cmp.Diff(want, h.podReady()); diff != "" {
		t.Errorf("before grace: pod readiness (-want +got):\n%s", diff)
	}
	h.advance(2 * time.Second)
	want["stays"] = v1.ConditionFalse
	if diff := cmp.Diff(want, h.podReady()); diff != "" {
		t.Errorf("after grace: pod readiness (-want +got):\n%s", diff)
	}
}

// Run wires the monitor loop and the eviction workers: a node reporting
// Ready=False loses its untolerating pod without any test driving passes.
func TestRun(t *testing.T) {
	h := newHarness(t, map[string]agent{"n1": sick}, []*v1.Pod{pod("bare", "n1")})
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.c.Run(ctx, 2) }()
	testwait.For(t, "the pod evicted", func() (bool, string) {
		return len(h.pods()) == 0, fmt.Sprintf("nodes: %v", h.nodes())
	})
	cancel()
	<-done
	want := map[string]nodeView{"n1": {Conditions: notReady, Taints: []string{"not-ready:NoExecute", "not-ready:NoSchedule"}}}
	if diff := cmp.Diff(want, h.nodes()); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

// A write that conflicts (the node changed under the controller) is not
// retried blindly; the next pass judges the node again and succeeds.
func TestConflictRetriedNextPass(t *testing.T) {
	h := newHarness(t, map[string]agent{"n1": dead, "n2": live}, nil)
	conflicts := 2
	h.client.PrependReactor("update", "nodes", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" || conflicts == 0 {
			return false, nil, nil
		}
		conflicts--
		return true, nil, apierrors.NewConflict(v1.Resource("nodes"), "n1", errors.New("stale"))
	})
	h.advance(6 * time.Second) // n1 due at t0+6 s: both writes conflict
	if diff := cmp.Diff(map[string]nodeView{"n1": healthy, "n2": healthy}, h.nodes()); diff != "" {
		t.Errorf("after conflicts (-want +got):\n%s", diff)
	}
	h.advance(1 * time.Second)
	if diff := cmp.Diff(map[string]nodeView{"n1": lost, "n2": healthy}, h.nodes()); diff != "" {
		t.Errorf("next passes (-want +got):\n%s", diff)
	}
}
