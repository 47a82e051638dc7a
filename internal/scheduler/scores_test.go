package scheduler

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestLeastAllocated(t *testing.T) {
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     int64
	}{
		{name: "empty node, tiny pod", node: makeNode("n", "10", "10Gi", 10),
			pod: makePod("p", withContainer("cpu", "0", "memory", "0")), want: 100},
		{name: "half cpu, quarter memory", node: makeNode("n", "4", "4Gi", 10),
			pod: makePod("p", withContainer("cpu", "2", "memory", "1Gi")), want: (50 + 75) / 2},
		{name: "existing pods count", node: makeNode("n", "4", "4Gi", 10),
			existing: []*corev1.Pod{makePod("e", withContainer("cpu", "1", "memory", "1Gi"))},
			pod:      makePod("p", withContainer("cpu", "1", "memory", "1Gi")), want: 50},
		{name: "best-effort pod uses defaults", node: makeNode("n", "1", "1000Mi", 10),
			pod: makePod("p", withContainer()), want: (90 + 80) / 2},
		{name: "over-committed scores zero", node: makeNode("n", "1", "1Gi", 10),
			pod: makePod("p", withContainer("cpu", "2", "memory", "2Gi")), want: 0},
		{name: "no allocatable scores zero", node: makeNode("n", "0", "0", 10),
			pod: makePod("p", withContainer("cpu", "1m", "memory", "1")), want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := leastAllocated(newPodInfo(tc.pod), nodeWith(tc.node, tc.existing...))
			if got != tc.want {
				t.Errorf("leastAllocated = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestScoreOrdering checks that each score ranks nodes the intended way once
// weighted and normalised against the other candidates.
func TestScoreOrdering(t *testing.T) {
	type nodeCase struct {
		node     *corev1.Node
		existing []*corev1.Pod
	}
	req := withContainer("cpu", "100m", "memory", "100Mi")
	other := func(name string) *corev1.Pod { return makePod(name, req, withOwner("other")) }
	mine := func(name string) *corev1.Pod { return makePod(name, req, withOwner("rs")) }
	tests := []struct {
		name  string
		nodes []nodeCase
		pod   *corev1.Pod
		want  []string // node names, best first
	}{
		{
			name: "least allocated",
			nodes: []nodeCase{
				{node: makeNode("full", "1", "1Gi", 10), existing: []*corev1.Pod{makePod("a", withContainer("cpu", "800m", "memory", "800Mi"))}},
				{node: makeNode("empty", "1", "1Gi", 10)},
				{node: makeNode("half", "1", "1Gi", 10), existing: []*corev1.Pod{makePod("b", withContainer("cpu", "500m", "memory", "500Mi"))}},
			},
			pod:  makePod("p", req),
			want: []string{"empty", "half", "full"},
		},
		{
			name: "spread replicas of one owner",
			nodes: []nodeCase{
				{node: makeNode("two", "10", "10Gi", 10), existing: []*corev1.Pod{mine("a"), mine("b")}},
				{node: makeNode("none", "10", "10Gi", 10), existing: []*corev1.Pod{other("c"), other("d")}},
				{node: makeNode("one", "10", "10Gi", 10), existing: []*corev1.Pod{mine("e"), other("f")}},
			},
			pod:  makePod("p", req, withOwner("rs")),
			want: []string{"none", "one", "two"},
		},
		{
			name: "preferred node affinity",
			nodes: []nodeCase{
				{node: makeNode("plain", "10", "10Gi", 10)},
				{node: makeNode("ssd", "10", "10Gi", 10, withLabel("disk", "ssd"))},
				{node: makeNode("ssd-fast", "10", "10Gi", 10, withLabel("disk", "ssd"), withLabel("net", "fast"))},
			},
			pod: makePod("p", req,
				withPreferred(10, term(expr("disk", corev1.NodeSelectorOpIn, "ssd"))),
				withPreferred(5, term(expr("net", corev1.NodeSelectorOpExists)))),
			want: []string{"ssd-fast", "ssd", "plain"},
		},
		{
			name: "PreferNoSchedule taints",
			nodes: []nodeCase{
				{node: makeNode("two", "10", "10Gi", 10,
					withTaint("a", "", corev1.TaintEffectPreferNoSchedule), withTaint("b", "", corev1.TaintEffectPreferNoSchedule))},
				{node: makeNode("clean", "10", "10Gi", 10)},
				{node: makeNode("one", "10", "10Gi", 10, withTaint("a", "", corev1.TaintEffectPreferNoSchedule))},
			},
			pod:  makePod("p", req),
			want: []string{"clean", "one", "two"},
		},
		{
			name: "tolerated PreferNoSchedule taint costs nothing",
			nodes: []nodeCase{
				{node: makeNode("untolerated", "10", "10Gi", 10, withTaint("b", "", corev1.TaintEffectPreferNoSchedule))},
				{node: makeNode("tolerated", "10", "10Gi", 10, withTaint("a", "", corev1.TaintEffectPreferNoSchedule)),
					existing: []*corev1.Pod{makePod("x", withContainer("cpu", "1"))}},
			},
			pod:  makePod("p", req, withToleration("a", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule)),
			want: []string{"tolerated", "untolerated"},
		},
		{
			name: "taints outweigh load",
			nodes: []nodeCase{
				{node: makeNode("tainted-empty", "10", "10Gi", 10, withTaint("a", "", corev1.TaintEffectPreferNoSchedule))},
				{node: makeNode("busy", "10", "10Gi", 10), existing: []*corev1.Pod{makePod("x", withContainer("cpu", "5", "memory", "5Gi"))}},
			},
			pod:  makePod("p", req),
			want: []string{"busy", "tainted-empty"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPodInfo(tc.pod)
			var cands []candidate
			var r scoreRange
			for _, nc := range tc.nodes {
				c := scoreNode(p, nodeWith(nc.node, nc.existing...))
				cands = append(cands, c)
				r.include(&c)
			}
			slices.SortStableFunc(cands, func(a, b candidate) int {
				return int(r.total(&b) - r.total(&a))
			})
			var got []string
			for i, c := range cands {
				if i > 0 && r.total(&cands[i-1]) == r.total(&c) {
					t.Errorf("nodes %s and %s tie at %d", cands[i-1].node.name, c.node.name, r.total(&c))
				}
				got = append(got, c.node.name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name             string
		v, highest       int64
		want, wantRevers int64
	}{
		{name: "all zero", v: 0, highest: 0, want: 0, wantRevers: 100},
		{name: "max", v: 4, highest: 4, want: 100, wantRevers: 0},
		{name: "quarter", v: 1, highest: 4, want: 25, wantRevers: 75},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalize(tc.v, tc.highest); got != tc.want {
				t.Errorf("normalize = %d, want %d", got, tc.want)
			}
			if got := reverseNormalize(tc.v, tc.highest); got != tc.wantRevers {
				t.Errorf("reverseNormalize = %d, want %d", got, tc.wantRevers)
			}
		})
	}
}
