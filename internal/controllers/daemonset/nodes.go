package daemonset

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/resources"
)

// The labels a daemon pod carries beside its template's.
const (
	// labelTemplateGeneration is the DaemonSet's template generation the
	// pod was made from.
	labelTemplateGeneration = "pod-template-generation"
	// labelRevisionHash is the hash of its ControllerRevision.
	labelRevisionHash = appsv1.DefaultDaemonSetUniqueLabelKey // "controller-revision-hash"
)

// The node taints of Kubernetes' node lifecycle that every daemon pod
// tolerates, so that daemons keep running (or start) on nodes that are
// unhealthy, under pressure or cordoned.
const (
	taintNotReady           = "node.kubernetes.io/not-ready"
	taintUnreachable        = "node.kubernetes.io/unreachable"
	taintDiskPressure       = "node.kubernetes.io/disk-pressure"
	taintMemoryPressure     = "node.kubernetes.io/memory-pressure"
	taintPIDPressure        = "node.kubernetes.io/pid-pressure"
	taintUnschedulable      = "node.kubernetes.io/unschedulable"
	taintNetworkUnavailable = "node.kubernetes.io/network-unavailable"
)

// addDaemonTolerations adds upstream's AddOrUpdateDaemonPodTolerations to
// spec: an equal toleration already there is replaced, not duplicated.
func addDaemonTolerations(spec *v1.PodSpec) {
	add := func(key string, effect v1.TaintEffect) {
		t := v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: effect}
		for i := range spec.Tolerations {
			old := &spec.Tolerations[i]
			if old.Key == t.Key && old.Effect == t.Effect && old.Operator == t.Operator && old.Value == t.Value {
				if !apiequality.Semantic.DeepEqual(*old, t) {
					*old = t
				}
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, t)
	}
	add(taintNotReady, v1.TaintEffectNoExecute)
	add(taintUnreachable, v1.TaintEffectNoExecute)
	add(taintDiskPressure, v1.TaintEffectNoSchedule)
	add(taintMemoryPressure, v1.TaintEffectNoSchedule)
	add(taintPIDPressure, v1.TaintEffectNoSchedule)
	add(taintUnschedulable, v1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(taintNetworkUnavailable, v1.TaintEffectNoSchedule)
	}
}

// nodeNameAffinity returns affinity with its required node affinity
// replaced by the one term "metadata.name In [node]", as upstream's
// ReplaceDaemonSetPodNodeNameNodeAffinity: the scheduler then has one
// choice. Preferred terms and pod (anti-)affinity are kept.
func nodeNameAffinity(affinity *v1.Affinity, node string) *v1.Affinity {
	sel := &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchFields: []v1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: v1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
	if affinity == nil {
		affinity = &v1.Affinity{}
	}
	if affinity.NodeAffinity == nil {
		affinity.NodeAffinity = &v1.NodeAffinity{}
	}
	affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = sel
	return affinity
}

// targetNodeName returns the node a daemon pod is for: its spec.nodeName
// once bound, before that its metadata.name affinity.
func targetNodeName(pod *v1.Pod) (string, bool) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == metav1.ObjectNameField && f.Operator == v1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0], true
			}
		}
	}
	return "", false
}

// newPod returns the pod ds runs on node, labelled for revision hash.
func newPod(ds *appsv1.DaemonSet, node, hash string) *v1.Pod {
	t := ds.Spec.Template.DeepCopy()
	lbls := make(map[string]string, len(t.Labels)+2)
	for k, v := range t.Labels {
		lbls[k] = v
	}
	if gen := resources.TemplateGeneration(ds); gen > 0 {
		lbls[labelTemplateGeneration] = strconv.FormatInt(gen, 10)
	}
	if hash != "" {
		lbls[labelRevisionHash] = hash
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    controllerutil.PodNamePrefix(ds.Name),
			Namespace:       ds.Namespace,
			Labels:          lbls,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Spec: t.Spec,
	}
	addDaemonTolerations(&pod.Spec)
	if node != "" {
		pod.Spec.Affinity = nodeNameAffinity(pod.Spec.Affinity, node)
	}
	return pod
}

// nodeShouldRunDaemonPod is upstream's NodeShouldRunDaemonPod: shouldRun
// says whether ds wants a pod on node now, shouldContinueRunning whether a
// pod already there may stay (a NoSchedule taint it does not tolerate keeps
// new pods off, not running ones).
func nodeShouldRunDaemonPod(node *v1.Node, ds *appsv1.DaemonSet) (shouldRun, shouldContinueRunning bool) {
	if n := ds.Spec.Template.Spec.NodeName; n != "" && n != node.Name {
		return false, false
	}
	pod := newPod(ds, "", "")
	// Ignore parse errors as upstream does: a selector validation let
	// through matches nothing.
	if fits, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !fits {
		return false, false
	}
	untolerated := func(effects ...v1.TaintEffect) bool {
		_, found := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
			for _, e := range effects {
				if t.Effect == e {
					return true
				}
			}
			return false
		}, false)
		return found
	}
	if untolerated(v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute) {
		return false, !untolerated(v1.TaintEffectNoExecute)
	}
	return true, true
}
