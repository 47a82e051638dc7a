package scheduler

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Random clusters and pods for the property test. Value sets are small so
// that selectors, tolerations and ports collide often.

var (
	taintKeys   = []string{"dedicated", "gpu", "node.kubernetes.io/unreachable"}
	taintValues = []string{"", "a", "b"}
	effects     = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule}
	labelKeys   = []string{"zone", "disk", "rank"}
	labelValues = map[string][]string{"zone": {"a", "b", "c"}, "disk": {"ssd", "hdd"}, "rank": {"1", "2", "3", "x"}}
	hostIPs     = []string{"", "0.0.0.0", "10.0.0.1", "10.0.0.2"}
	protocols   = []corev1.Protocol{"", corev1.ProtocolTCP, corev1.ProtocolUDP}
)

const gpu = corev1.ResourceName("example.com/gpu")

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func milli(v int64) resource.Quantity { return *resource.NewMilliQuantity(v, resource.DecimalSI) }
func bytes(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.BinarySI) }
func count(v int64) resource.Quantity { return *resource.NewQuantity(v, resource.DecimalSI) }

func randomNode(r *rand.Rand, name string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	n.Status.Allocatable = corev1.ResourceList{
		corev1.ResourceCPU:    milli(int64(r.IntN(9)) * 500),
		corev1.ResourceMemory: bytes(int64(r.IntN(9)) << 29),
		corev1.ResourcePods:   count(int64(r.IntN(8))),
	}
	if r.IntN(2) == 0 {
		n.Status.Allocatable[corev1.ResourceEphemeralStorage] = bytes(int64(r.IntN(4)) << 30)
	}
	if r.IntN(4) == 0 {
		n.Status.Allocatable[gpu] = count(int64(r.IntN(3)))
	}
	switch r.IntN(8) {
	case 0: // no Ready condition at all
	case 1:
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}
	default:
		n.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		}
	}
	n.Spec.Unschedulable = r.IntN(8) == 0
	for range r.IntN(3) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{
			Key: pick(r, taintKeys), Value: pick(r, taintValues), Effect: pick(r, effects),
		})
	}
	for _, k := range labelKeys {
		if r.IntN(3) > 0 {
			n.Labels[k] = pick(r, labelValues[k])
		}
	}
	return n
}

func randomPod(r *rand.Rand, name string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)}}
	for range 1 + r.IntN(2) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: "c", Resources: corev1.ResourceRequirements{Requests: randomRequests(r, true)},
		})
	}
	if r.IntN(4) == 0 {
		p.Spec.InitContainers = []corev1.Container{{
			Name: "i", Resources: corev1.ResourceRequirements{Requests: randomRequests(r, false)},
		}}
	}
	if r.IntN(6) == 0 {
		p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: milli(int64(r.IntN(3)) * 50)}
	}
	for range r.IntN(3) {
		tol := corev1.Toleration{Key: pick(r, taintKeys), Effect: pick(r, append(effects, ""))}
		switch r.IntN(6) {
		case 0:
			tol.Operator = corev1.TolerationOpExists
		case 1:
			tol = corev1.Toleration{Operator: corev1.TolerationOpExists} // tolerates everything
			if r.IntN(4) > 0 {
				tol.Key = taintUnschedulable
				tol.Effect = corev1.TaintEffectNoSchedule
			}
		default:
			tol.Operator = corev1.TolerationOpEqual
			tol.Value = pick(r, taintValues)
		}
		p.Spec.Tolerations = append(p.Spec.Tolerations, tol)
	}
	if r.IntN(4) == 0 {
		k := pick(r, labelKeys)
		p.Spec.NodeSelector = map[string]string{k: pick(r, labelValues[k])}
	}
	if r.IntN(5) == 0 {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: randomNodeSelector(r),
		}}
	}
	if r.IntN(4) == 0 {
		c := &p.Spec.Containers[0]
		for range 1 + r.IntN(2) {
			port := int32(80 + r.IntN(3))
			c.Ports = append(c.Ports, corev1.ContainerPort{
				ContainerPort: port, HostPort: port, HostIP: pick(r, hostIPs), Protocol: pick(r, protocols),
			})
		}
	}
	return p
}

func randomRequests(r *rand.Rand, extended bool) corev1.ResourceList {
	l := corev1.ResourceList{}
	if r.IntN(5) > 0 {
		l[corev1.ResourceCPU] = milli(int64(r.IntN(16)) * 100)
	}
	if r.IntN(5) > 0 {
		l[corev1.ResourceMemory] = bytes(int64(r.IntN(16)) << 27)
	}
	if extended && r.IntN(6) == 0 {
		l[corev1.ResourceEphemeralStorage] = bytes(int64(r.IntN(3)) << 29)
	}
	if extended && r.IntN(8) == 0 {
		l[gpu] = count(int64(r.IntN(2)))
	}
	return l
}

func randomNodeSelector(r *rand.Rand) *corev1.NodeSelector {
	ops := []corev1.NodeSelectorOperator{
		corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
		corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt,
	}
	s := &corev1.NodeSelector{}
	for range 1 + r.IntN(2) {
		var term corev1.NodeSelectorTerm
		for range r.IntN(3) {
			k := pick(r, labelKeys)
			e := corev1.NodeSelectorRequirement{Key: k, Operator: pick(r, ops)}
			switch e.Operator {
			case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
				e.Values = []string{pick(r, labelValues[k]), pick(r, labelValues[k])}
			case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
				e.Values = []string{fmt.Sprint(r.IntN(4))}
			}
			term.MatchExpressions = append(term.MatchExpressions, e)
		}
		if r.IntN(4) == 0 {
			op := pick(r, ops[:2])
			term.MatchFields = []corev1.NodeSelectorRequirement{{
				Key: fieldNodeName, Operator: op, Values: []string{fmt.Sprintf("n%d", r.IntN(4))},
			}}
		}
		s.NodeSelectorTerms = append(s.NodeSelectorTerms, term)
	}
	return s
}
