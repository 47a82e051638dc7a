package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/testwait"
)

// agent is a simulated node agent.
type agent struct {
	renew bool               // alive: renews its lease every second, resets its conditions
	ready v1.ConditionStatus // what it reports as Ready
}

// harness drives the controller pass by pass on a fake clock, with agents
// acting between passes. Evictions are drained synchronously after each
// pass and caches are caught up, so nothing depends on real time.
type harness struct {
	t         *testing.T
	ctx       context.Context
	client    *fake.Clientset
	clk       *clocktesting.FakeClock
	c         *Controller
	rec       *record.FakeRecorder
	agents    map[string]agent
	lastRenew map[string]time.Time
	events    map[string]bool // reasons seen
}

func newHarness(t *testing.T, agents map[string]agent, pods []*v1.Pod) *harness {
	t.Helper()
	var objs []runtime.Object
	for name, a := range agents {
		objs = append(objs, &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status:     v1.NodeStatus{Conditions: agentConditions(a.ready, t0)},
		}, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: v1.NamespaceNodeLease, Name: name},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: ptr.To(metav1.NewMicroTime(t0))},
		})
	}
	for _, p := range pods {
		objs = append(objs, p)
	}
	h := &harness{
		t: t, client: fake.NewClientset(objs...), clk: clocktesting.NewFakeClock(t0),
		rec: record.NewFakeRecorder(1000), agents: agents, lastRenew: map[string]time.Time{}, events: map[string]bool{},
	}
	for name := range agents {
		h.lastRenew[name] = t0
	}
	factory := informers.NewSharedInformerFactory(h.client, 0)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.c = New(logger, h.client, factory, h.rec, WithClock(h.clk))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	h.ctx = ctx
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return h
}

func agentConditions(ready v1.ConditionStatus, at time.Time) []v1.NodeCondition {
	hb := metav1.NewTime(at)
	return []v1.NodeCondition{
		{Type: v1.NodeReady, Status: ready, Reason: "KubeletReady", LastHeartbeatTime: hb, LastTransitionTime: hb},
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: hb, LastTransitionTime: hb},
	}
}

// advance moves the clock by d, one monitor period at a time.
func (h *harness) advance(d time.Duration) {
	for step := time.Duration(0); step < d; step += DefaultMonitorPeriod {
		h.clk.Step(DefaultMonitorPeriod)
		h.agentsAct()
		h.pass()
	}
}

// jump moves the clock by d at once: the controller missed its ticks.
func (h *harness) jump(d time.Duration) {
	h.clk.Step(d)
	h.agentsAct()
	h.pass()
}

func (h *harness) agentsAct() {
	h.t.Helper()
	now := h.clk.Now()
	for name, a := range h.agents {
		if !a.renew || now.Sub(h.lastRenew[name]) < time.Second {
			continue
		}
		h.lastRenew[name] = now
		lease, err := h.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			h.t.Fatal(err)
		}
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
		if _, err := h.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Update(h.ctx, lease, metav1.UpdateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		node, err := h.client.CoreV1().Nodes().Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			h.t.Fatal(err)
		}
		if c := readyCondition(node); c == nil || c.Status != a.ready || c.Reason == "NodeStatusUnknown" {
			node.Status.Conditions = agentConditions(a.ready, now)
			if _, err := h.client.CoreV1().Nodes().UpdateStatus(h.ctx, node, metav1.UpdateOptions{}); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

func (h *harness) pass() {
	h.t.Helper()
	h.catchUp()
	h.c.monitor(h.ctx)
	for h.c.evictions.Len() > 0 {
		controllerutil.ProcessNext(h.ctx, h.c.logger, h.c.evictions, h.c.evict, evictionLog...)
	}
	h.catchUp()
	for {
		select {
		case e := <-h.rec.Events:
			h.events[strings.Fields(e)[1]] = true
		default:
			return
		}
	}
}

// catchUp waits until the controller's caches show what the server has.
func (h *harness) catchUp() {
	h.t.Helper()
	testwait.For(h.t, "the informer caches to catch up with the fake server", func() (bool, string) {
		return h.cachesCurrent(), "they differ"
	})
}

// cachesCurrent compares content, not resourceVersions: the fake tracker
// keeps versions apart from the objects it hands out.
func (h *harness) cachesCurrent() bool {
	server, cached := map[string]any{}, map[string]any{}
	nodes, _ := h.client.CoreV1().Nodes().List(h.ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		server["node/"+n.Name] = []any{n.Spec, n.Status}
	}
	// From the tracker: a test may make LIST lie about leases.
	gv := coordinationv1.SchemeGroupVersion
	leases, _ := h.client.Tracker().List(gv.WithResource("leases"), gv.WithKind("Lease"), v1.NamespaceNodeLease)
	for _, l := range leases.(*coordinationv1.LeaseList).Items {
		server["lease/"+l.Name] = l.Spec
	}
	pods, _ := h.client.CoreV1().Pods("").List(h.ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		server["pod/"+p.Name] = []any{p.DeletionTimestamp, p.Status}
	}
	cn, _ := h.c.nodes.List(labels.Everything())
	for _, n := range cn {
		cached["node/"+n.Name] = []any{n.Spec, n.Status}
	}
	cl, _ := h.c.leases.List(labels.Everything())
	for _, l := range cl {
		cached["lease/"+l.Name] = l.Spec
	}
	cp, _ := h.c.pods.List(labels.Everything())
	for _, p := range cp {
		cached["pod/"+p.Name] = []any{p.DeletionTimestamp, p.Status}
	}
	return apiequality.Semantic.DeepEqual(server, cached)
}

// nodeView is what a test checks about a node.
type nodeView struct {
	Conditions string   // "MemoryPressure=False Ready=True"
	Taints     []string // "unreachable:NoExecute"
}

func (h *harness) nodes() map[string]nodeView {
	h.t.Helper()
	out := map[string]nodeView{}
	list, err := h.client.CoreV1().Nodes().List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, n := range list.Items {
		var conds, taints []string
		for _, c := range n.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
		}
		for _, t := range n.Spec.Taints {
			taints = append(taints, strings.TrimPrefix(t.Key, "node.kubernetes.io/")+":"+string(t.Effect))
		}
		sort.Strings(conds)
		sort.Strings(taints)
		out[n.Name] = nodeView{Conditions: strings.Join(conds, " "), Taints: taints}
	}
	return out
}

func (h *harness) pods() []string {
	h.t.Helper()
	list, err := h.client.CoreV1().Pods("").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (h *harness) eventReasons() []string {
	var out []string
	for r := range h.events {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// pod makes a running pod on node with the given tolerations.
func pod(name, node string, tols ...v1.Toleration) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(name)},
		Spec:       v1.PodSpec{NodeName: node, Tolerations: tols},
		Status: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{
			{Type: v1.PodReady, Status: v1.ConditionTrue},
		}},
	}
}

// podReady returns each pod's Ready condition status.
func (h *harness) podReady() map[string]v1.ConditionStatus {
	h.t.Helper()
	list, err := h.client.CoreV1().Pods("").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]v1.ConditionStatus{}
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodReady {
				out[p.Name] = c.Status
			}
		}
	}
	return out
}

// tolerate is the toleration the API server adds by default, for secs
// seconds (nil: forever).
func tolerate(key string, secs *int64) v1.Toleration {
	return v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: secs}
}
