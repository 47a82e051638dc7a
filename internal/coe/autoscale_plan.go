package coe

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"wharf.dev/wharf/internal/scheduler"
)

// The host autoscaler's decisions, as pure functions of what one round
// sees: the cluster's nodes and pods, its disruption budgets and its
// autoscaled groups. autoscale.go gathers the inputs and acts.

// Annotations cluster-autoscaler users already put on pods and nodes.
const (
	annotationSafeToEvict       = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	annotationScaleDownDisabled = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
)

// asGroup is an autoscaled node group as one round sees it.
type asGroup struct {
	name  string // the NodeGroup's name
	short string // as users name it: "default-worker"
	// count is the group's nodeCount; min and max bound it (max < 0: none).
	count, min, max int32
	// template is the Node a new host of the group would register: its
	// allocatable, labels and taints.
	template *corev1.Node
	// nodes are the group's registered nodes; upcoming counts the hosts
	// asked for that are not Ready nodes yet.
	nodes    []string
	upcoming int
	// busy: a resize is under way, nothing is removed; blocked says why
	// the group cannot grow ("": it can).
	busy    bool
	blocked string
}

// asView is what a round knows of the cluster.
type asView struct {
	nodes []*corev1.Node
	pods  []*corev1.Pod // every pod, bound or not
	pdbs  []*policyv1.PodDisruptionBudget
	// groups are the autoscaled groups, in a stable order.
	groups []*asGroup
}

// simulator returns the scheduler's view of the registered nodes with the
// pods bound to them, plus one template node per upcoming host.
func (v *asView) simulator() *scheduler.Simulator {
	s := scheduler.NewSimulator()
	for _, n := range v.nodes {
		s.AddNode(n)
	}
	for _, p := range v.pods {
		if p.Spec.NodeName != "" && !podTerminal(p) {
			s.AddPod(p, p.Spec.NodeName)
		}
	}
	for _, g := range v.groups {
		for i := range g.upcoming {
			s.AddNode(g.newNode("upcoming-" + strconv.Itoa(i)))
		}
	}
	return s
}

// newNode is the group's template as a node of the given name.
func (g *asGroup) newNode(suffix string) *corev1.Node {
	n := g.template.DeepCopy()
	n.Name = "autoscaler-" + g.short + "-" + suffix
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[corev1.LabelHostname] = n.Name
	return n
}

func podTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// unschedulable: the scheduler found no node for the pod (PodScheduled
// False, reason Unschedulable), as cluster-autoscaler selects pods.
func unschedulable(p *corev1.Pod) bool {
	if p.Spec.NodeName != "" || p.DeletionTimestamp != nil || podTerminal(p) {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// podSize orders pods biggest first (first-fit decreasing packs tighter).
func podSize(p *corev1.Pod) int64 {
	r := scheduler.PodRequests(p)
	return r.Cpu().MilliValue()*(1<<20) + r.Memory().Value()/1000
}

// scaleUp is what a round decides for pending pods.
type scaleUp struct {
	group *asGroup // nil: no group grows
	add   int32
	// pods is how many of the pending pods the new hosts take, fitNow
	// how many fit the existing and upcoming nodes.
	pods, fitNow int
	// capped says the group would need more hosts than its max allows.
	capped string
	// helped are the pods the new hosts take; waiting says why each of
	// the others gets none.
	helped  []*corev1.Pod
	waiting map[*corev1.Pod]string
	// notScaled says, per group (or "" for pods no group takes), why a
	// pending pod did not make it grow.
	notScaled map[string]string
}

// planScaleUp picks the group whose new hosts take the most of pending
// (ties: fewer hosts, then the name), and how many hosts it needs, by
// packing the pods first-fit, biggest first, on the existing and upcoming
// nodes, then on new hosts of the group's shape, up to its max.
func planScaleUp(v *asView, pending []*corev1.Pod) scaleUp {
	out := scaleUp{notScaled: map[string]string{}}
	pending = slices.Clone(pending)
	slices.SortStableFunc(pending, func(a, b *corev1.Pod) int { return cmp.Compare(podSize(b), podSize(a)) })
	// Pods that fit where they are, once the scheduler retries them, or
	// on a host already asked for, need nothing new.
	base := v.simulator()
	var left []*corev1.Pod
	for _, p := range pending {
		if base.Place(p, nil) == "" {
			left = append(left, p)
		}
	}
	out.fitNow = len(pending) - len(left)
	if len(left) == 0 {
		return out
	}
	type option struct {
		g         *asGroup
		add, pods int
		capped    string
		helped    []*corev1.Pod
	}
	var best *option
	// Why a pod fits no new host, and whether it fits some group's.
	fitsNone, fitsSome := map[*corev1.Pod]string{}, map[*corev1.Pod]bool{}
	for _, g := range v.groups {
		if g.blocked != "" {
			out.notScaled[g.short] = g.blocked
			continue
		}
		room := int32(-1)
		if g.max >= 0 {
			room = max(0, g.max-g.count)
		}
		sim := base.Clone()
		var added []string
		opt := &option{g: g}
		isNew := func(n string) bool { return slices.Contains(added, n) }
		needed := 0
		for _, p := range left {
			if sim.Place(p, func(n string) bool { return !isNew(n) }) != "" {
				opt.pods++
				opt.helped = append(opt.helped, p)
				fitsSome[p] = true
				continue
			}
			empty := g.newNode("probe")
			probe := scheduler.NewSimulator()
			probe.AddNode(empty)
			if err := probe.Fits(p, empty.Name); err != nil {
				if _, ok := fitsNone[p]; !ok {
					fitsNone[p] = fmt.Sprintf("pod %s/%s does not fit a new host of group %s: needs %s, a host has %s (%s)",
						p.Namespace, p.Name, g.short, resourceText(scheduler.PodRequests(p)), resourceText(allocatable(empty)), fitReasons(err))
				}
				continue
			}
			fitsSome[p] = true
			needed++
			if room >= 0 && int32(len(added)) >= room {
				continue
			}
			n := g.newNode("new-" + strconv.Itoa(len(added)))
			sim.AddNode(n)
			added = append(added, n.Name)
			sim.Place(p, func(name string) bool { return name != n.Name })
			opt.pods++
			opt.helped = append(opt.helped, p)
		}
		opt.add = len(added)
		if needed > len(added) {
			opt.capped = fmt.Sprintf("max nodes %d reached", g.max)
			if opt.add == 0 {
				out.notScaled[g.short] = fmt.Sprintf("max nodes %d reached: %d pods unschedulable", g.max, len(left))
			}
		}
		if opt.add == 0 {
			continue
		}
		if best == nil || opt.pods > best.pods || (opt.pods == best.pods && opt.add < best.add) {
			best = opt
		}
	}
	// Say it for the biggest pod that fits no new host.
	for _, p := range left {
		if why, ok := fitsNone[p]; ok && !fitsSome[p] {
			out.notScaled[""] = why
			break
		}
	}
	// Each pod left waiting, why (cluster-autoscaler's NotTriggerScaleUp).
	out.waiting = map[*corev1.Pod]string{}
	for _, p := range left {
		if best != nil && slices.Contains(best.helped, p) {
			continue
		}
		switch {
		case fitsNone[p] != "" && !fitsSome[p]:
			out.waiting[p] = fitsNone[p]
		case best != nil && best.capped != "":
			out.waiting[p] = best.capped
		default:
			var whys []string
			for _, g := range v.groups {
				if w := out.notScaled[g.short]; w != "" {
					whys = append(whys, "group "+g.short+": "+w)
				}
			}
			out.waiting[p] = strings.Join(whys, "; ")
		}
	}
	if best != nil {
		out.group, out.add, out.pods, out.capped, out.helped = best.g, int32(best.add), best.pods, best.capped, best.helped
	}
	return out
}

func allocatable(n *corev1.Node) corev1.ResourceList {
	if len(n.Status.Allocatable) > 0 {
		return n.Status.Allocatable
	}
	return n.Status.Capacity
}

// resourceText is "cpu 64, memory 1Gi" (pods and zero amounts left out).
func resourceText(l corev1.ResourceList) string {
	first := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}
	var parts, extended []string
	for _, name := range first {
		if q, ok := l[name]; ok && !q.IsZero() {
			parts = append(parts, string(name)+" "+q.String())
		}
	}
	for name, q := range l {
		if !slices.Contains(first, name) && name != corev1.ResourcePods && !q.IsZero() {
			extended = append(extended, string(name)+" "+q.String())
		}
	}
	slices.Sort(extended)
	parts = append(parts, extended...)
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// fitReasons is the scheduler's "0/1 nodes are available: 1 Insufficient
// cpu." without the count: "Insufficient cpu".
func fitReasons(err error) string {
	s := strings.TrimSuffix(err.Error(), ".")
	if _, rest, ok := strings.Cut(s, ": "); ok {
		s = rest
	}
	var out []string
	for _, r := range strings.Split(s, ", ") {
		if n, rest, ok := strings.Cut(r, " "); ok {
			if _, err := strconv.Atoi(n); err == nil {
				r = rest
			}
		}
		out = append(out, r)
	}
	return strings.Join(out, ", ")
}

// asSettings are the scale-down knobs.
type asSettings struct {
	// threshold: a node whose pods request less than this fraction of its
	// allocatable CPU and memory is underused.
	threshold float64
}

// podsToMove lists the pods that must go elsewhere if node goes, or says
// why the node cannot go, as cluster-autoscaler decides: DaemonSet and
// mirror pods stay (they die with the node); a pod with no controller or
// with local storage blocks, unless annotated safe-to-evict; a pod
// annotated safe-to-evict=false blocks; so does one whose disruption
// budget allows no more disruptions.
func podsToMove(v *asView, node string) ([]*corev1.Pod, string) {
	var out []*corev1.Pod
	for _, p := range v.pods {
		if p.Spec.NodeName != node || podTerminal(p) || !evictable(p) {
			continue
		}
		id := p.Namespace + "/" + p.Name
		safe := p.Annotations[annotationSafeToEvict]
		switch {
		case safe == "false":
			return nil, fmt.Sprintf("pod %s is annotated %s=false", id, annotationSafeToEvict)
		case safe == "true":
		case metav1.GetControllerOf(p) == nil:
			return nil, fmt.Sprintf("pod %s has no controller to recreate it", id)
		case hasLocalStorage(p):
			return nil, fmt.Sprintf("pod %s has local storage", id)
		}
		out = append(out, p)
	}
	// A budget must allow as many disruptions as the node has its pods.
	for _, b := range v.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		n := 0
		for _, p := range out {
			if p.Namespace == b.Namespace && sel.Matches(labels.Set(p.Labels)) {
				n++
			}
		}
		if n > 0 && int(b.Status.DisruptionsAllowed) < n {
			return nil, fmt.Sprintf("PodDisruptionBudget %s/%s allows %d disruptions, the node has %d of its pods", b.Namespace, b.Name, b.Status.DisruptionsAllowed, n)
		}
	}
	return out, ""
}

// hasLocalStorage: emptyDir (on disk) or hostPath volumes, whose data
// would be lost.
func hasLocalStorage(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.HostPath != nil || (v.EmptyDir != nil && v.EmptyDir.Medium != corev1.StorageMediumMemory) {
			return true
		}
	}
	return false
}

// utilization is the larger of the node's requested CPU and memory
// fractions of allocatable (every pod counts, DaemonSets' too).
func utilization(v *asView, n *corev1.Node) float64 {
	alloc := allocatable(n)
	var cpu, mem int64
	for _, p := range v.pods {
		if p.Spec.NodeName != n.Name || podTerminal(p) {
			continue
		}
		r := scheduler.PodRequests(p)
		cpu += r.Cpu().MilliValue()
		mem += r.Memory().Value()
	}
	u := 0.0
	if a := alloc.Cpu().MilliValue(); a > 0 {
		u = max(u, float64(cpu)/float64(a))
	}
	if a := alloc.Memory().Value(); a > 0 {
		u = max(u, float64(mem)/float64(a))
	}
	return u
}

// removable lists the nodes of autoscaled groups that could go now (their
// group above min and settled, the node underused, its pods movable and
// fitting on the nodes that stay) with their utilization, and, for the
// underused nodes that cannot go, why. Nodes are taken least used first,
// each on top of the removals before it.
func removable(v *asView, set asSettings) (map[string]float64, map[string]string) {
	ok, why := map[string]float64{}, map[string]string{}
	byName := map[string]*corev1.Node{}
	for _, n := range v.nodes {
		byName[n.Name] = n
	}
	sim := v.simulator()
	gone := map[string]bool{}
	for _, g := range v.groups {
		if g.busy || g.count <= g.min {
			continue
		}
		type cand struct {
			n *corev1.Node
			u float64
		}
		var cands []cand
		for _, name := range g.nodes {
			n := byName[name]
			if n == nil || !nodeReady(n) || n.Spec.Unschedulable {
				continue
			}
			if u := utilization(v, n); u < set.threshold {
				cands = append(cands, cand{n, u})
			}
		}
		slices.SortStableFunc(cands, func(a, b cand) int {
			if c := cmp.Compare(a.u, b.u); c != 0 {
				return c
			}
			return strings.Compare(a.n.Name, b.n.Name)
		})
		room := int(g.count - g.min)
		for _, c := range cands {
			if room == 0 {
				break
			}
			if c.n.Annotations[annotationScaleDownDisabled] == "true" {
				why[c.n.Name] = "annotated " + annotationScaleDownDisabled + "=true"
				continue
			}
			pods, block := podsToMove(v, c.n.Name)
			if block != "" {
				why[c.n.Name] = block
				continue
			}
			try := sim.Clone()
			try.RemoveNode(c.n.Name)
			skip := func(n string) bool { return gone[n] }
			fit := ""
			for _, p := range pods {
				if try.Place(p, skip) == "" {
					fit = fmt.Sprintf("pod %s/%s fits on no other node", p.Namespace, p.Name)
					break
				}
			}
			if fit != "" {
				why[c.n.Name] = fit
				continue
			}
			sim, gone[c.n.Name], ok[c.n.Name] = try, true, c.u
			room--
		}
	}
	return ok, why
}

// dueForRemoval keeps, of the nodes removable now, those that have been
// so for at least after (since says since when), per group.
func dueForRemoval(v *asView, ok map[string]float64, since map[string]time.Time, now time.Time, after time.Duration) map[*asGroup][]string {
	out := map[*asGroup][]string{}
	for _, g := range v.groups {
		for _, name := range g.nodes {
			if _, yes := ok[name]; yes && !since[name].IsZero() && now.Sub(since[name]) >= after {
				out[g] = append(out[g], name)
			}
		}
	}
	return out
}
