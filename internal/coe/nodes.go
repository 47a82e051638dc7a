package coe

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

const (
	readyReason = "Ready"
	// LabelNodeGroup is set on every node to its node group's name.
	LabelNodeGroup = "wharf.dev/nodegroup"
	// The labels and taints a node got from its group, so that those the
	// group drops later are removed and nobody else's are touched.
	annotationLabels = "wharf.dev/nodegroup-labels"
	annotationTaints = "wharf.dev/nodegroup-taints"
)

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	cond := readyCondition(n)
	return cond != nil && cond.Status == corev1.ConditionTrue
}

// nodeReason is "Ready" or "NotReady: <why>" (the health reason of a node).
func nodeReason(n *corev1.Node) string {
	if n == nil {
		return "NotReady: not registered"
	}
	cond := readyCondition(n)
	switch {
	case cond == nil:
		return "NotReady: no Ready condition yet"
	case cond.Status == corev1.ConditionTrue:
		return readyReason
	}
	why := strings.TrimSpace(strings.Join(slices.DeleteFunc([]string{cond.Reason, cond.Message},
		func(s string) bool { return s == "" }), ": "))
	if why == "" {
		why = "Ready is " + string(cond.Status)
	}
	return "NotReady: " + why
}

// withGroup returns n carrying g's labels and taints (and the group
// label), without those it got from g before and g no longer has.
func withGroup(n *corev1.Node, g *wharfv1.NodeGroup) (*corev1.Node, bool) {
	out := n.DeepCopy()
	labels := maps.Clone(g.Spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelNodeGroup] = g.Name
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, k := range splitList(n.Annotations[annotationLabels]) {
		if _, keep := labels[k]; !keep {
			delete(out.Labels, k)
		}
	}
	maps.Copy(out.Labels, labels)

	id := func(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }
	want := map[string]corev1.Taint{}
	for _, t := range g.Spec.Taints {
		want[id(t)] = t
	}
	before := splitList(n.Annotations[annotationTaints])
	var taints []corev1.Taint
	have := map[string]bool{}
	for _, t := range out.Spec.Taints {
		if w, ok := want[id(t)]; ok {
			t.Value = w.Value // ours now, whoever set it first
			have[id(t)] = true
		} else if slices.Contains(before, id(t)) {
			continue
		}
		taints = append(taints, t)
	}
	for _, t := range g.Spec.Taints {
		if !have[id(t)] {
			taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
			have[id(t)] = true
		}
	}
	out.Spec.Taints = taints

	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[annotationLabels] = strings.Join(slices.Sorted(maps.Keys(labels)), ",")
	out.Annotations[annotationTaints] = strings.Join(slices.Sorted(maps.Keys(want)), ",")
	if out.Annotations[annotationTaints] == "" {
		delete(out.Annotations, annotationTaints)
	}
	return out, !equality.Semantic.DeepEqual(n.ObjectMeta, out.ObjectMeta) || !equality.Semantic.DeepEqual(n.Spec, out.Spec)
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// applyGroup puts g's labels and taints on the nodes of its hosts, as
// listed in known (nodes not there are not registered yet); it is called
// again whenever the group changes. Only nodes that need a change are
// read afresh and written.
func applyGroup(ctx context.Context, kube kubernetes.Interface, g *wharfv1.NodeGroup, names []string, known map[string]*corev1.Node) error {
	nodes := kube.CoreV1().Nodes()
	for _, name := range names {
		if n := known[name]; n == nil {
			continue
		} else if _, changed := withGroup(n, g); !changed {
			continue
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := nodes.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			next, changed := withGroup(n, g)
			if !changed {
				return nil
			}
			_, err = nodes.Update(ctx, next, metav1.UpdateOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %q: labels and taints of node group %q: %w", name, g.Name, err)
		}
	}
	return nil
}
