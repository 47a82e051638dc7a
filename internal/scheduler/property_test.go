package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// TestScheduleProperties schedules random pods one by one on random nodes and
// checks every decision against an oracle written independently of the
// filters: upstream toleration and label-selector code, and usage recomputed
// from scratch out of the pods placed so far.
func TestScheduleProperties(t *testing.T) {
	iterations := 400
	if testing.Short() {
		iterations = 50
	}
	var scheduled, unscheduled int
	for it := range iterations {
		seed := uint64(it)
		r := rand.New(rand.NewPCG(seed, 42))
		nodeCount := 1 + r.IntN(12)
		if it%10 == 0 {
			nodeCount = 150 + r.IntN(150) // large enough for sampling to matter
		}
		nodes := make([]*corev1.Node, nodeCount)
		c := newCache()
		for i := range nodes {
			nodes[i] = randomNode(r, fmt.Sprintf("n%d", i))
			c.setNode(nodes[i])
		}
		a := newCore(c, []int32{0, 1, 10, 50, 100}[r.IntN(5)], rand.New(rand.NewPCG(seed, 7)))
		placed := map[string][]*corev1.Pod{}
		pods := min(2*nodeCount*(1+r.IntN(6)), 300)
		for i := range pods {
			pod := randomPod(r, fmt.Sprintf("p%d", i))
			res, err := a.schedule(newPodInfo(pod))
			if err != nil {
				for _, n := range nodes {
					if why := oracleFits(pod, n, placed[n.Name]); why == "" {
						t.Fatalf("seed %d: pod %s left unscheduled (%v) but fits node %s\npod: %+v",
							seed, pod.Name, err, n.Name, pod.Spec)
					}
				}
				unscheduled++
				continue
			}
			scheduled++
			var node *corev1.Node
			for _, n := range nodes {
				if n.Name == res.node {
					node = n
				}
			}
			if why := oracleFits(pod, node, placed[node.Name]); why != "" {
				t.Fatalf("seed %d: pod %s placed on %s, which does not fit: %s\npod: %+v\nnode: %+v",
					seed, pod.Name, node.Name, why, pod.Spec, node)
			}
			placed[node.Name] = append(placed[node.Name], pod)
		}
	}
	// Guard against a generator that makes every pod fit, or none.
	t.Logf("%d pods scheduled, %d unschedulable", scheduled, unscheduled)
	if scheduled < iterations || unscheduled < iterations {
		t.Errorf("too few decisions of one kind: %d scheduled, %d unschedulable", scheduled, unscheduled)
	}
}

// oracleFits returns why a pod cannot go on a node that runs pods, or "".
func oracleFits(pod *corev1.Pod, node *corev1.Node, pods []*corev1.Pod) string {
	ready := false
	for _, cond := range node.Status.Conditions {
		ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
	}
	if !ready {
		return "not ready"
	}
	taints := node.Spec.Taints
	if node.Spec.Unschedulable {
		taints = append(taints[:len(taints):len(taints)],
			corev1.Taint{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule})
	}
	for _, taint := range taints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for _, tol := range pod.Spec.Tolerations {
			ok = ok || tol.ToleratesTaint(logr.Discard(), &taint, true)
		}
		if !ok {
			return "untolerated taint " + taint.Key
		}
	}
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return "nodeSelector"
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		if !oracleMatchesTerms(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, node) {
			return "node affinity"
		}
	}
	for _, want := range oraclePorts(pod) {
		for _, other := range pods {
			for _, used := range oraclePorts(other) {
				if want.port == used.port && want.protocol == used.protocol &&
					(want.ip == used.ip || want.ip == "0.0.0.0" || used.ip == "0.0.0.0") {
					return fmt.Sprintf("host port %d", want.port)
				}
			}
		}
	}
	if int64(len(pods)+1) > node.Status.Allocatable.Pods().Value() {
		return "too many pods"
	}
	for name, alloc := range node.Status.Allocatable {
		if name == corev1.ResourcePods {
			continue
		}
		want := oracleRequest(pod, name)
		used := int64(0)
		for _, p := range pods {
			used += oracleRequest(p, name)
		}
		if want > 0 && used+want > quantity(name, alloc) {
			return "insufficient " + string(name)
		}
	}
	for _, ctr := range pod.Spec.Containers {
		for name := range ctr.Resources.Requests {
			if _, ok := node.Status.Allocatable[name]; !ok && oracleRequest(pod, name) > 0 {
				return "no " + string(name) + " on node"
			}
		}
	}
	return ""
}

func quantity(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// oracleRequest is the plain rule: containers summed, at least the largest
// init container, plus overhead (the random pods have no sidecars).
func oracleRequest(pod *corev1.Pod, name corev1.ResourceName) int64 {
	var sum, peak int64
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Requests[name]; ok {
			sum += quantity(name, q)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if q, ok := c.Resources.Requests[name]; ok {
			peak = max(peak, quantity(name, q))
		}
	}
	total := max(sum, peak)
	if q, ok := pod.Spec.Overhead[name]; ok {
		total += quantity(name, q)
	}
	return total
}

type oraclePort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

func oraclePorts(pod *corev1.Pod) []oraclePort {
	var out []oraclePort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			op := oraclePort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if op.ip == "" {
				op.ip = "0.0.0.0"
			}
			if op.protocol == "" {
				op.protocol = corev1.ProtocolTCP
			}
			out = append(out, op)
		}
	}
	return out
}

// oracleMatchesTerms evaluates node affinity through apimachinery's label
// selectors (which implement In, NotIn, Exists, DoesNotExist, Gt and Lt).
func oracleMatchesTerms(terms []corev1.NodeSelectorTerm, node *corev1.Node) bool {
	ops := map[corev1.NodeSelectorOperator]selection.Operator{
		corev1.NodeSelectorOpIn: selection.In, corev1.NodeSelectorOpNotIn: selection.NotIn,
		corev1.NodeSelectorOpExists: selection.Exists, corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
		corev1.NodeSelectorOpGt: selection.GreaterThan, corev1.NodeSelectorOpLt: selection.LessThan,
	}
	for _, term := range terms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue
		}
		sel := labels.NewSelector()
		ok := true
		for _, e := range term.MatchExpressions {
			req, err := labels.NewRequirement(e.Key, ops[e.Operator], e.Values)
			if err != nil {
				ok = false
				break
			}
			sel = sel.Add(*req)
		}
		for _, f := range term.MatchFields {
			in := f.Values[0] == node.Name
			ok = ok && in == (f.Operator == corev1.NodeSelectorOpIn)
		}
		if ok && sel.Matches(labels.Set(node.Labels)) {
			return true
		}
	}
	return false
}
