package coe

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// Builders of the autoscaler's inputs: hosts of 4 CPU and 8Gi.

func asNode(name string, opts ...func(*corev1.Node)) *corev1.Node {
	l := corev1.ResourceList{
		corev1.ResourceCPU: kresource.MustParse("4"), corev1.ResourceMemory: kresource.MustParse("8Gi"),
		corev1.ResourcePods: kresource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{Allocatable: l, Capacity: l,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

type podOpt func(*corev1.Pod)

// asPod is a ReplicaSet's pod requesting cpu (and 100Mi), bound to node
// ("": pending, unschedulable).
func asPod(name, node, cpu string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs",
				Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: kresource.MustParse(cpu), corev1.ResourceMemory: kresource.MustParse("100Mi")}}}}},
	}
	if node == "" {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	} else {
		p.Status.Phase = corev1.PodRunning
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func pods(n int, prefix, node, cpu string, opts ...podOpt) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, asPod(fmt.Sprintf("%s%d", prefix, i), node, cpu, opts...))
	}
	return out
}

func noController(p *corev1.Pod) { p.OwnerReferences = nil }
func daemonPod(p *corev1.Pod) {
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: "ds", UID: "ds", Controller: ptr.To(true)}}
}
func emptyDir(p *corev1.Pod) {
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
}
func tolerates(key string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists})
	}
}
func selects(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}

// asGroupOf is group name (short) of cluster "c" with hosts c-<short>-<i>.
func asGroupOf(short string, count, lo, hi int32, nodes []*corev1.Node, tweak ...func(*wharfv1.NodeGroup)) *asGroup {
	g := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-" + short},
		Spec: wharfv1.NodeGroupSpec{Cluster: "c", Role: wharfv1.RoleWorker, NodeCount: count}}
	for _, f := range tweak {
		f(g)
	}
	ag := &asGroup{name: g.Name, short: short, count: count, min: lo, max: hi}
	ready := 0
	for _, n := range nodes {
		if strings.HasPrefix(n.Name, g.Name+"-") {
			ag.nodes = append(ag.nodes, n.Name)
			ready++
		}
	}
	ag.upcoming = max(0, int(count)-ready)
	ag.template = templateNode(g, []*wharfv1.NodeGroup{g}, nodes, wharfv1.Flavor{CPU: "4", Memory: "8Gi"})
	return ag
}

func TestPlanScaleUp(t *testing.T) {
	one := []*corev1.Node{asNode("c-w-0")}
	full := pods(8, "run", "c-w-0", "500m")
	for _, tc := range []struct {
		name    string
		nodes   []*corev1.Node
		running []*corev1.Pod
		pending []*corev1.Pod
		groups  func(nodes []*corev1.Node) []*asGroup
		// wantGroup "" : no scale-up.
		wantGroup  string
		wantAdd    int32
		wantCapped bool
		// wantWhy: substrings of notScaled[key].
		wantWhy map[string]string
	}{{
		name: "22 pods of 500m, 8 per host, max 4: 3 hosts", nodes: one, running: full,
		pending:   pods(22, "p", "", "500m"),
		groups:    func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
		wantGroup: "w", wantAdd: 3,
	}, {
		name: "30 pods of 500m need 4 hosts, max 4 leaves room for 3", nodes: one, running: full,
		pending:   pods(30, "p", "", "500m"),
		groups:    func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
		wantGroup: "w", wantAdd: 3, wantCapped: true,
	}, {
		name: "pods that fit the existing nodes need no host", nodes: one,
		pending: pods(4, "p", "", "500m"),
		groups:  func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
	}, {
		name: "pods that fit upcoming hosts need no more", nodes: one, running: full,
		pending: pods(16, "p", "", "500m"),
		groups:  func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 3, 1, 4, n)} },
	}, {
		name: "upcoming hosts are counted before new ones", nodes: one, running: full,
		pending:   pods(17, "p", "", "500m"),
		groups:    func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 3, 1, 4, n)} },
		wantGroup: "w", wantAdd: 1,
	}, {
		name: "at max", nodes: one, running: full,
		pending: pods(3, "p", "", "500m"),
		groups:  func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 1, n)} },
		wantWhy: map[string]string{"w": "max nodes 1 reached: 3 pods unschedulable"},
	}, {
		name: "a pod bigger than a host", nodes: one, running: full,
		pending: []*corev1.Pod{asPod("huge", "", "64")},
		groups:  func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
		wantWhy: map[string]string{"": "pod default/huge does not fit a new host of group w: needs cpu 64, memory 100Mi, a host has cpu 4, memory 8Gi (Insufficient cpu)"},
	}, {
		name: "the big pod waits, the small ones get a host", nodes: one, running: full,
		pending:   append(pods(2, "p", "", "1"), asPod("huge", "", "64")),
		groups:    func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
		wantGroup: "w", wantAdd: 1, wantWhy: map[string]string{"": "needs cpu 64"},
	}, {
		name: "a group without max is blocked", nodes: one, running: full,
		pending: pods(2, "p", "", "1"),
		groups: func(n []*corev1.Node) []*asGroup {
			g := asGroupOf("w", 1, 1, -1, n)
			g.blocked = "no max nodes"
			return []*asGroup{g}
		},
		wantWhy: map[string]string{"w": "no max nodes"},
	}, {
		name: "the tainted group takes the pods that tolerate and select it", nodes: one, running: full,
		pending: append(pods(2, "p", "", "1"), pods(5, "gpu", "", "1", tolerates("gpu"), selects("accel", "yes"))...),
		groups: func(n []*corev1.Node) []*asGroup {
			return []*asGroup{asGroupOf("gpu", 0, 0, 5, n, func(g *wharfv1.NodeGroup) {
				g.Spec.Labels = map[string]string{"accel": "yes"}
				g.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}
			}), asGroupOf("w", 1, 1, 4, n)}
		},
		// gpu's 2 hosts take 5 pods, w's 1 host 2: gpu first, w next round.
		wantGroup: "gpu", wantAdd: 2,
	}, {
		name: "a node selector picks the group with the label", nodes: one, running: full,
		pending: pods(3, "p", "", "1", selects("disk", "ssd")),
		groups: func(n []*corev1.Node) []*asGroup {
			return []*asGroup{asGroupOf("w", 1, 1, 4, n), asGroupOf("ssd", 0, 0, 3, n, func(g *wharfv1.NodeGroup) {
				g.Spec.Labels = map[string]string{"disk": "ssd"}
			})}
		},
		wantGroup: "ssd", wantAdd: 1,
	}, {
		name: "a selector no group matches", nodes: one, running: full,
		pending: pods(1, "p", "", "1", selects("disk", "nvme")),
		groups:  func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", 1, 1, 4, n)} },
		wantWhy: map[string]string{"": "didn't match Pod's node affinity/selector"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			v := &asView{nodes: tc.nodes, pods: append(slices.Clone(tc.running), tc.pending...), groups: tc.groups(tc.nodes)}
			got := planScaleUp(v, tc.pending)
			gotGroup := ""
			if got.group != nil {
				gotGroup = got.group.short
			}
			if gotGroup != tc.wantGroup || got.add != tc.wantAdd {
				t.Errorf("scale up group %q by %d, want %q by %d (notScaled %v)", gotGroup, got.add, tc.wantGroup, tc.wantAdd, got.notScaled)
			}
			if (got.capped != "") != tc.wantCapped {
				t.Errorf("capped %q, want capped %v", got.capped, tc.wantCapped)
			}
			for k, want := range tc.wantWhy {
				if !strings.Contains(got.notScaled[k], want) {
					t.Errorf("notScaled[%q] = %q, want it to say %q", k, got.notScaled[k], want)
				}
			}
			if len(tc.wantWhy) == 0 && len(got.notScaled) > 0 {
				t.Errorf("notScaled %v, want none", got.notScaled)
			}
		})
	}
}

func TestRemovable(t *testing.T) {
	three := []*corev1.Node{asNode("c-w-0"), asNode("c-w-1"), asNode("c-w-2")}
	group := func(count, lo int32) func([]*corev1.Node) []*asGroup {
		return func(n []*corev1.Node) []*asGroup { return []*asGroup{asGroupOf("w", count, lo, 5, n)} }
	}
	budget := func(allowed int32) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
		}
	}
	for _, tc := range []struct {
		name   string
		pods   []*corev1.Pod
		pdbs   []*policyv1.PodDisruptionBudget
		groups func([]*corev1.Node) []*asGroup
		want   []string
		// whyNot: node → substring of why it cannot go.
		whyNot map[string]string
	}{{
		name:   "busy node 0 stays, the empty ones go down to min",
		pods:   pods(6, "a", "c-w-0", "500m"),
		groups: group(3, 1), want: []string{"c-w-1", "c-w-2"},
	}, {
		name:   "never below min",
		pods:   pods(6, "a", "c-w-0", "500m"),
		groups: group(3, 2), want: []string{"c-w-1"},
	}, {
		name:   "at min nothing goes",
		groups: group(3, 3),
	}, {
		name:   "busy nodes are not underused",
		pods:   slices.Concat(pods(5, "a", "c-w-0", "500m"), pods(5, "b", "c-w-1", "500m"), pods(5, "c", "c-w-2", "500m")),
		groups: group(3, 1),
	}, {
		name:   "an underused node's pods move to the others",
		pods:   slices.Concat(pods(4, "a", "c-w-0", "500m"), pods(1, "b", "c-w-1", "500m"), pods(5, "c", "c-w-2", "500m")),
		groups: group(3, 1), want: []string{"c-w-1"},
	}, {
		name:   "pods that fit on no other node keep theirs",
		pods:   slices.Concat(pods(1, "a", "c-w-0", "1900m"), pods(1, "b", "c-w-1", "1900m"), pods(1, "c", "c-w-2", "3500m")),
		groups: group(3, 1), want: []string{"c-w-0"},
		whyNot: map[string]string{"c-w-1": "fits on no other node"},
	}, {
		name:   "a pod with no controller blocks",
		pods:   slices.Concat(pods(1, "a", "c-w-1", "100m", noController), pods(1, "b", "c-w-2", "100m", emptyDir)),
		groups: group(3, 1), want: []string{"c-w-0"},
		whyNot: map[string]string{"c-w-1": "no controller", "c-w-2": "local storage"},
	}, {
		name: "safe-to-evict lifts the local storage block",
		pods: slices.Concat(pods(6, "a", "c-w-0", "500m"), pods(6, "b", "c-w-1", "500m"),
			pods(1, "c", "c-w-2", "100m", emptyDir, func(p *corev1.Pod) {
				p.Annotations = map[string]string{annotationSafeToEvict: "true"}
			})),
		groups: group(3, 1), want: []string{"c-w-2"},
	}, {
		name:   "DaemonSet pods neither block nor move",
		pods:   slices.Concat(pods(1, "d0", "c-w-0", "100m", daemonPod), pods(1, "d1", "c-w-1", "100m", daemonPod), pods(1, "d2", "c-w-2", "100m", daemonPod)),
		groups: group(3, 1), want: []string{"c-w-0", "c-w-1"},
	}, {
		name:   "a budget that allows no disruption blocks",
		pods:   slices.Concat(pods(2, "a", "c-w-0", "100m"), pods(1, "b", "c-w-1", "100m")),
		pdbs:   []*policyv1.PodDisruptionBudget{budget(0)},
		groups: group(3, 1), want: []string{"c-w-2"},
		whyNot: map[string]string{"c-w-0": "allows 0 disruptions", "c-w-1": "allows 0 disruptions"},
	}, {
		name:   "a budget allowing one lets a node with one of its pods go",
		pods:   slices.Concat(pods(2, "a", "c-w-0", "100m"), pods(1, "b", "c-w-1", "100m"), pods(6, "c", "c-w-2", "500m")),
		pdbs:   []*policyv1.PodDisruptionBudget{budget(1)},
		groups: group(3, 2), want: []string{"c-w-1"},
	}, {
		name: "a busy group is left alone",
		groups: func(n []*corev1.Node) []*asGroup {
			g := asGroupOf("w", 3, 1, 5, n)
			g.busy = true
			return []*asGroup{g}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			v := &asView{nodes: three, pods: tc.pods, pdbs: tc.pdbs, groups: tc.groups(three)}
			ok, why := removable(v, asSettings{threshold: 0.5})
			if got := slices.Sorted(maps.Keys(ok)); !slices.Equal(got, tc.want) {
				t.Errorf("removable %v, want %v (why not: %v)", got, tc.want, why)
			}
			for n, want := range tc.whyNot {
				if !strings.Contains(why[n], want) {
					t.Errorf("why %s stays: %q, want it to say %q", n, why[n], want)
				}
			}
		})
	}
}

func TestDueForRemoval(t *testing.T) {
	nodes := []*corev1.Node{asNode("c-w-0"), asNode("c-w-1"), asNode("c-w-2")}
	g := asGroupOf("w", 3, 1, 5, nodes)
	v := &asView{nodes: nodes, groups: []*asGroup{g}}
	now := time.Unix(1000, 0)
	since := map[string]time.Time{"c-w-1": now.Add(-31 * time.Second), "c-w-2": now.Add(-5 * time.Second)}
	ok := map[string]float64{"c-w-1": 0, "c-w-2": 0}
	got := dueForRemoval(v, ok, since, now, 30*time.Second)
	if !slices.Equal(got[g], []string{"c-w-1"}) {
		t.Errorf("due %v, want c-w-1 only (c-w-2 underused for 5s only)", got[g])
	}
}

func TestGroupBounds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		group          string
		min            int32
		max            *int32
		labels         map[string]string
		wantLo, wantHi int32
		wantOn         bool
	}{
		{name: "the group's own", group: "c-gpu", min: 1, max: ptr.To[int32](4), labels: map[string]string{LabelAutoScaling: "true"}, wantLo: 1, wantHi: 4, wantOn: true},
		{name: "no max", group: "c-gpu", labels: map[string]string{LabelMaxNodes: "9"}, wantLo: 0, wantHi: -1},
		{name: "the default group takes the cluster's labels", group: "c-default-worker",
			labels: map[string]string{LabelMinNodes: "2", LabelMaxNodes: "9", LabelAutoScaling: "true"}, wantLo: 2, wantHi: 9, wantOn: true},
		{name: "its own win", group: "c-default-worker", min: 1, max: ptr.To[int32](3),
			labels: map[string]string{LabelMinNodes: "2", LabelMaxNodes: "9"}, wantLo: 1, wantHi: 3},
		{name: "garbage labels", group: "c-default-worker", labels: map[string]string{LabelMaxNodes: "lots", LabelAutoScaling: "yes"}, wantHi: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: tc.group},
				Spec: wharfv1.NodeGroupSpec{Cluster: "c", MinNodeCount: tc.min, MaxNodeCount: tc.max}}
			lo, hi := groupBounds(g, tc.labels)
			if lo != tc.wantLo || hi != tc.wantHi {
				t.Errorf("bounds [%d, %d], want [%d, %d]", lo, hi, tc.wantLo, tc.wantHi)
			}
			if on := autoscalingOn(g, tc.labels); on != tc.wantOn {
				t.Errorf("autoscaling on %v, want %v", on, tc.wantOn)
			}
		})
	}
	// The group's label overrides the cluster's.
	g := &wharfv1.NodeGroup{Spec: wharfv1.NodeGroupSpec{Labels: map[string]string{LabelAutoScaling: "false"}}}
	if autoscalingOn(g, map[string]string{LabelAutoScaling: "true"}) {
		t.Error("group label false, cluster label true: autoscaling on, want off")
	}
}

func TestTemplateNode(t *testing.T) {
	g := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-gpu"},
		Spec: wharfv1.NodeGroupSpec{Cluster: "c", Role: wharfv1.RoleWorker,
			Labels: map[string]string{"accel": "yes"}, Taints: []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}}}
	def := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-default-worker"},
		Spec: wharfv1.NodeGroupSpec{Cluster: "c", Role: wharfv1.RoleWorker, Labels: map[string]string{"tier": "web"}}}
	// The gpu group has no node yet: the shape comes from a default worker's,
	// without that group's labels.
	model, _ := withGroup(asNode("c-node-0", func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceCPU] = kresource.MustParse("6") }), def)
	n := templateNode(g, []*wharfv1.NodeGroup{def, g}, []*corev1.Node{model}, wharfv1.Flavor{})
	if cpu := n.Status.Allocatable[corev1.ResourceCPU]; cpu.String() != "6" {
		t.Errorf("template cpu %s, want the model's 6", cpu.String())
	}
	if n.Labels["accel"] != "yes" || n.Labels[LabelNodeGroup] != "c-gpu" || n.Labels["tier"] != "" {
		t.Errorf("template labels %v: want the gpu group's, not the default group's", n.Labels)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "gpu" {
		t.Errorf("template taints %v", n.Spec.Taints)
	}
	// No node at all: the template's flavor.
	n = templateNode(g, []*wharfv1.NodeGroup{g}, nil, wharfv1.Flavor{CPU: "2", Memory: "1Gi"})
	if cpu := n.Status.Allocatable[corev1.ResourceCPU]; cpu.String() != "2" || !nodeReady(n) {
		t.Errorf("template from the flavor: cpu %s, ready %v", cpu.String(), nodeReady(n))
	}
}

func TestUnschedulable(t *testing.T) {
	waiting := asPod("p", "", "1")
	if !unschedulable(waiting) {
		t.Error("a pod with PodScheduled=False/Unschedulable is not unschedulable")
	}
	bound := asPod("p", "n", "1")
	gated := asPod("p", "", "1")
	gated.Status.Conditions[0].Reason = "SchedulingGated"
	deleting := asPod("p", "", "1")
	deleting.DeletionTimestamp = &metav1.Time{}
	for _, p := range []*corev1.Pod{bound, gated, deleting} {
		if unschedulable(p) {
			t.Errorf("pod %+v counted as unschedulable", p.Status)
		}
	}
}

// Each waiting pod is told why: the pods the new hosts take, and those
// left over when the group is capped.
func TestPlanScaleUpPods(t *testing.T) {
	nodes := []*corev1.Node{asNode("c-w-0")}
	pending := append(pods(30, "p", "", "500m"), asPod("huge", "", "64"))
	v := &asView{nodes: nodes, pods: append(pods(8, "run", "c-w-0", "500m"), pending...),
		groups: []*asGroup{asGroupOf("w", 1, 1, 4, nodes)}}
	got := planScaleUp(v, pending)
	if got.add != 3 || len(got.helped) != 24 {
		t.Fatalf("add %d hosts for %d pods, want 3 for 24", got.add, len(got.helped))
	}
	capped := 0
	for p, why := range got.waiting {
		switch {
		case p.Name == "huge":
			if !strings.Contains(why, "needs cpu 64") {
				t.Errorf("huge pod told %q", why)
			}
		case strings.Contains(why, "max nodes 4 reached"):
			capped++
		default:
			t.Errorf("pod %s told %q", p.Name, why)
		}
	}
	if capped != 6 {
		t.Errorf("%d pods told the max is reached, want 6", capped)
	}
}

func TestClusterAutoscaleConfig(t *testing.T) {
	base := AutoscaleConfig{ScaleUpDelay: time.Second, ScaleDownUnneeded: 30 * time.Second, ScaleDownThreshold: 0.5}
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		want    AutoscaleConfig
		wantBad string
	}{
		{name: "none", want: base},
		{name: "all", labels: map[string]string{LabelScaleUpDelay: "0s", LabelScaleDownUnneeded: "2m", LabelScaleDownThreshold: "0.3"},
			want: AutoscaleConfig{ScaleUpDelay: 0, ScaleDownUnneeded: 2 * time.Minute, ScaleDownThreshold: 0.3}},
		{name: "bad ones ignored", labels: map[string]string{LabelScaleUpDelay: "soon", LabelScaleDownUnneeded: "10ms", LabelScaleDownThreshold: "2"},
			want: base, wantBad: "new_pod_scale_up_delay=\"soon\" ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := clusterAutoscaleConfig(base, tc.labels)
			if got != tc.want {
				t.Errorf("config %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(bad, tc.wantBad) || (tc.wantBad == "") != (bad == "") {
				t.Errorf("bad %q, want it to say %q", bad, tc.wantBad)
			}
		})
	}
}
