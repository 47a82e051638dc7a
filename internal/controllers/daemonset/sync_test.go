package daemonset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// existing is a pod present before the sync: on node, current revision
// or not, in phase, ready or not.
type existing struct {
	name, node string
	old        bool
	phase      v1.PodPhase
	ready      bool
	unbound    bool
}

func TestSync(t *testing.T) {
	tainted := func(key string, effect v1.TaintEffect) v1.Taint { return v1.Taint{Key: key, Effect: effect} }
	tolerate := func(key string, effect v1.TaintEffect) func(*appsv1.DaemonSet) {
		return func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = append(ds.Spec.Template.Spec.Tolerations, v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: effect})
		}
	}
	tests := []struct {
		name      string
		nodes     []*v1.Node
		mutate    []func(*appsv1.DaemonSet)
		pods      []existing
		wantNodes []string // target nodes of the pods after the sync
		wantGone  []string // pods deleted
		reasons   []string // events beside SuccessfulCreate/Delete
		status    appsv1.DaemonSetStatus
	}{
		{
			name:      "one pod per node",
			nodes:     []*v1.Node{node("a", nil), node("b", nil), node("c", nil)},
			wantNodes: []string{"a", "b", "c"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberUnavailable: 3},
		},
		{
			name:  "nodeSelector",
			nodes: []*v1.Node{node("a", map[string]string{"disk": "ssd"}), node("b", map[string]string{"disk": "hdd"}), node("c", nil)},
			mutate: []func(*appsv1.DaemonSet){func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
			}},
			wantNodes: []string{"a"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberUnavailable: 1},
		},
		{
			name:  "required node affinity",
			nodes: []*v1.Node{node("a", map[string]string{"zone": "x"}), node("b", map[string]string{"zone": "y"})},
			mutate: []func(*appsv1.DaemonSet){func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
						MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpNotIn, Values: []string{"x"}}},
					}}},
				}}
			}},
			wantNodes: []string{"b"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberUnavailable: 1},
		},
		{
			name: "untolerated taints keep new pods off; default tolerations let them on",
			nodes: []*v1.Node{
				node("a", nil, tainted("dedicated", v1.TaintEffectNoSchedule)),
				node("b", nil, tainted("node.kubernetes.io/unschedulable", v1.TaintEffectNoSchedule)),
				node("c", nil, tainted("node.kubernetes.io/not-ready", v1.TaintEffectNoExecute)),
				node("d", nil, tainted("dedicated", v1.TaintEffectPreferNoSchedule)),
			},
			wantNodes: []string{"b", "c", "d"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberUnavailable: 3},
		},
		{
			name:      "a tolerated taint",
			nodes:     []*v1.Node{node("a", nil, tainted("dedicated", v1.TaintEffectNoSchedule))},
			mutate:    []func(*appsv1.DaemonSet){tolerate("dedicated", v1.TaintEffectNoSchedule)},
			wantNodes: []string{"a"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberUnavailable: 1},
		},
		{
			name: "NoSchedule keeps a running pod, NoExecute evicts it",
			nodes: []*v1.Node{
				node("a", nil, tainted("dedicated", v1.TaintEffectNoSchedule)),
				node("b", nil, tainted("dedicated", v1.TaintEffectNoExecute)),
			},
			pods: []existing{
				{name: "pa", node: "a", phase: v1.PodRunning, ready: true},
				{name: "pb", node: "b", phase: v1.PodRunning, ready: true},
			},
			wantNodes: []string{"a"},
			wantGone:  []string{"pb"},
			status:    appsv1.DaemonSetStatus{CurrentNumberScheduled: 0, NumberMisscheduled: 1},
		},
		{
			name:  "a node labelled out loses its pod",
			nodes: []*v1.Node{node("a", map[string]string{"run": "yes"}), node("b", map[string]string{"run": "no"})},
			mutate: []func(*appsv1.DaemonSet){func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.NodeSelector = map[string]string{"run": "yes"}
			}},
			pods: []existing{
				{name: "pa", node: "a", phase: v1.PodRunning, ready: true},
				{name: "pb", node: "b", phase: v1.PodRunning, ready: true},
			},
			wantNodes: []string{"a"},
			wantGone:  []string{"pb"},
			status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
				NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1},
		},
		{
			name:      "a failed pod is deleted",
			nodes:     []*v1.Node{node("a", nil), node("b", nil)},
			pods:      []existing{{name: "pa", node: "a", phase: v1.PodFailed}, {name: "pb", node: "b", phase: v1.PodRunning, ready: true}},
			wantNodes: []string{"b"},
			wantGone:  []string{"pa"},
			reasons:   []string{reasonFailedDaemonPod},
			status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 1, NumberAvailable: 1,
				UpdatedNumberScheduled: 2, NumberUnavailable: 1},
		},
		{
			name:      "extra pods on a node: the oldest stays",
			nodes:     []*v1.Node{node("a", nil)},
			pods:      []existing{{name: "p1", node: "a", phase: v1.PodRunning, ready: true}, {name: "p2", node: "a", phase: v1.PodPending}},
			wantNodes: []string{"a"},
			wantGone:  []string{"p2"},
			status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1,
				UpdatedNumberScheduled: 1},
		},
		{
			name:      "an unbound pod for a node that is gone",
			nodes:     []*v1.Node{node("a", nil)},
			pods:      []existing{{name: "pa", node: "a", phase: v1.PodRunning, ready: true}, {name: "px", node: "gone", unbound: true}},
			wantNodes: []string{"a"},
			wantGone:  []string{"px"},
			status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1,
				UpdatedNumberScheduled: 1},
		},
		{
			name:  "old pods count as scheduled, not updated",
			nodes: []*v1.Node{node("a", nil)},
			mutate: []func(*appsv1.DaemonSet){func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
			}},
			pods:      []existing{{name: "pa", node: "a", old: true, phase: v1.PodRunning, ready: true}},
			wantNodes: []string{"a"},
			status:    appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, n := range tt.nodes {
				objs = append(objs, n)
			}
			e := newEnv(t, append(objs, newDS("ds", tt.mutate...))...)
			ds := e.getDS("ds")
			for _, p := range tt.pods {
				hash := currentHash(ds)
				if p.old {
					hash = "old"
				}
				pod := daemonPod(ds, p.name, p.node, hash, p.phase, p.ready)
				if p.old {
					pod.Labels[labelTemplateGeneration] = "0"
				}
				if p.unbound {
					pod.Spec.NodeName = ""
				}
				e.create(pod)
			}
			e.mustSync("ds")

			if diff := cmp.Diff(tt.wantNodes, e.podNodes()); diff != "" {
				t.Errorf("pods' nodes (-want +got):\n%s", diff)
			}
			for _, gone := range tt.wantGone {
				for _, p := range e.pods() {
					if p.Name == gone {
						t.Errorf("pod %s not deleted", gone)
					}
				}
			}
			var reasons []string
			for _, r := range e.reasons() {
				if r != "SuccessfulCreate" && r != "SuccessfulDelete" {
					reasons = append(reasons, r)
				}
			}
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// The status counts the pods as the sync found them: once the
			// caches have seen this sync's writes, and the next sync's.
			e.mustSync("ds")
			e.mustSync("ds")
			got := e.getDS("ds").Status
			want := tt.status
			want.ObservedGeneration = ds.Generation
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
