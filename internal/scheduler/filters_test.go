package scheduler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestFilters(t *testing.T) {
	const (
		noSchedule = corev1.TaintEffectNoSchedule
		noExecute  = corev1.TaintEffectNoExecute
		preferNo   = corev1.TaintEffectPreferNoSchedule
		exists     = corev1.TolerationOpExists
		equal      = corev1.TolerationOpEqual
		tcp        = corev1.ProtocolTCP
		udp        = corev1.ProtocolUDP
	)
	small := withContainer("cpu", "100m", "memory", "100Mi")
	base := func(opts ...nodeOpt) *corev1.Node { return makeNode("n1", "1", "1Gi", 10, opts...) }
	zoned := func(opts ...nodeOpt) *corev1.Node {
		return base(append([]nodeOpt{withLabel("zone", "a"), withLabel("cores", "8")}, opts...)...)
	}
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     []string // nil: the pod fits
	}{
		{name: "ready node fits", node: base(), pod: makePod("p", small)},
		{name: "not ready", node: base(withReady(corev1.ConditionFalse)), pod: makePod("p", small),
			want: []string{"1 node(s) were not ready"}},
		{name: "ready unknown", node: base(withReady(corev1.ConditionUnknown)), pod: makePod("p", small),
			want: []string{"1 node(s) were not ready"}},
		{name: "no conditions", node: base(withNoConditions()), pod: makePod("p", small),
			want: []string{"1 node(s) were not ready"}},
		{name: "cordoned", node: base(cordoned()), pod: makePod("p", small),
			want: []string{"1 node(s) were unschedulable"}},
		{name: "cordoned but tolerated", node: base(cordoned()),
			pod: makePod("p", small, withToleration(taintUnschedulable, exists, "", noSchedule))},
		{name: "cordon toleration for another effect", node: base(cordoned()),
			pod:  makePod("p", small, withToleration(taintUnschedulable, exists, "", noExecute)),
			want: []string{"1 node(s) were unschedulable"}},
		{name: "NoSchedule taint", node: base(withTaint("dedicated", "db", noSchedule)), pod: makePod("p", small),
			want: []string{"1 node(s) had untolerated taint {dedicated: db}"}},
		{name: "NoExecute taint with empty value", node: base(withTaint("node.kubernetes.io/unreachable", "", noExecute)),
			pod: makePod("p", small), want: []string{"1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }"}},
		{name: "PreferNoSchedule does not filter", node: base(withTaint("dedicated", "db", preferNo)), pod: makePod("p", small)},
		{name: "Equal toleration", node: base(withTaint("dedicated", "db", noSchedule)),
			pod: makePod("p", small, withToleration("dedicated", equal, "db", noSchedule))},
		{name: "Equal toleration wrong value", node: base(withTaint("dedicated", "db", noSchedule)),
			pod:  makePod("p", small, withToleration("dedicated", equal, "web", noSchedule)),
			want: []string{"1 node(s) had untolerated taint {dedicated: db}"}},
		{name: "empty operator means Equal", node: base(withTaint("dedicated", "db", noSchedule)),
			pod: makePod("p", small, withToleration("dedicated", "", "db", ""))},
		{name: "Exists toleration any value", node: base(withTaint("dedicated", "db", noSchedule)),
			pod: makePod("p", small, withToleration("dedicated", exists, "", ""))},
		{name: "toleration for other effect", node: base(withTaint("dedicated", "db", noExecute)),
			pod:  makePod("p", small, withToleration("dedicated", exists, "", noSchedule)),
			want: []string{"1 node(s) had untolerated taint {dedicated: db}"}},
		{name: "empty key Exists tolerates everything",
			node: base(withTaint("a", "1", noSchedule), withTaint("b", "2", noExecute), cordoned()),
			pod:  makePod("p", small, withToleration("", exists, "", ""))},
		{name: "only first untolerated taint reported",
			node: base(withTaint("a", "1", noSchedule), withTaint("b", "2", noSchedule)),
			pod:  makePod("p", small, withToleration("b", exists, "", "")),
			want: []string{"1 node(s) had untolerated taint {a: 1}"}},
		{name: "Gt toleration", node: base(withTaint("tier", "5", noSchedule)),
			pod: makePod("p", small, withToleration("tier", corev1.TolerationOpGt, "3", ""))},
		{name: "nodeSelector matches", node: zoned(), pod: makePod("p", small, withNodeSelector("zone", "a"))},
		{name: "nodeSelector value differs", node: zoned(), pod: makePod("p", small, withNodeSelector("zone", "b")),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "nodeSelector label missing", node: base(), pod: makePod("p", small, withNodeSelector("zone", "a")),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity In", node: zoned(),
			pod: makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpIn, "b", "a"))))},
		{name: "affinity NotIn on missing label", node: base(),
			pod: makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpNotIn, "a"))))},
		{name: "affinity NotIn", node: zoned(),
			pod:  makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpNotIn, "a")))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity Exists", node: zoned(),
			pod: makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpExists))))},
		{name: "affinity DoesNotExist", node: zoned(),
			pod:  makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpDoesNotExist)))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity Gt", node: zoned(),
			pod: makePod("p", small, withRequired(term(expr("cores", corev1.NodeSelectorOpGt, "4"))))},
		{name: "affinity Lt", node: zoned(),
			pod:  makePod("p", small, withRequired(term(expr("cores", corev1.NodeSelectorOpLt, "8")))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity Gt on non-integer label", node: zoned(),
			pod:  makePod("p", small, withRequired(term(expr("zone", corev1.NodeSelectorOpGt, "1")))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity expressions are ANDed", node: zoned(),
			pod: makePod("p", small, withRequired(term(
				expr("zone", corev1.NodeSelectorOpIn, "a"), expr("cores", corev1.NodeSelectorOpLt, "4")))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity terms are ORed", node: zoned(),
			pod: makePod("p", small, withRequired(
				term(expr("zone", corev1.NodeSelectorOpIn, "b")), term(expr("cores", corev1.NodeSelectorOpGt, "4"))))},
		{name: "affinity empty term matches nothing", node: zoned(),
			pod:  makePod("p", small, withRequired(corev1.NodeSelectorTerm{})),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "affinity matchFields name In", node: base(),
			pod: makePod("p", small, withRequired(fieldTerm(corev1.NodeSelectorOpIn, "n1")))},
		{name: "affinity matchFields name NotIn", node: base(),
			pod:  makePod("p", small, withRequired(fieldTerm(corev1.NodeSelectorOpNotIn, "n1"))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "nodeSelector and affinity both needed", node: zoned(),
			pod: makePod("p", small, withNodeSelector("zone", "b"),
				withRequired(term(expr("zone", corev1.NodeSelectorOpExists)))),
			want: []string{"1 node(s) didn't match Pod's node affinity/selector"}},
		{name: "host port free", node: base(), existing: []*corev1.Pod{makePod("e", withHostPort("", tcp, 80))},
			pod: makePod("p", withHostPort("", tcp, 8080))},
		{name: "host port taken", node: base(), existing: []*corev1.Pod{makePod("e", withHostPort("", tcp, 80))},
			pod: makePod("p", withHostPort("", tcp, 80)), want: []string{"1 node(s) didn't have free ports for the requested pod ports"}},
		{name: "host port other protocol", node: base(), existing: []*corev1.Pod{makePod("e", withHostPort("", tcp, 53))},
			pod: makePod("p", withHostPort("", udp, 53))},
		{name: "host port wildcard against specific ip", node: base(),
			existing: []*corev1.Pod{makePod("e", withHostPort("10.0.0.1", tcp, 80))},
			pod:      makePod("p", withHostPort("0.0.0.0", tcp, 80)),
			want:     []string{"1 node(s) didn't have free ports for the requested pod ports"}},
		{name: "host port two specific ips", node: base(),
			existing: []*corev1.Pod{makePod("e", withHostPort("10.0.0.1", tcp, 80))},
			pod:      makePod("p", withHostPort("10.0.0.2", tcp, 80))},
		{name: "cpu exactly fits", node: base(), existing: []*corev1.Pod{makePod("e", withContainer("cpu", "600m"))},
			pod: makePod("p", withContainer("cpu", "400m"))},
		{name: "insufficient cpu", node: base(), existing: []*corev1.Pod{makePod("e", withContainer("cpu", "600m"))},
			pod: makePod("p", withContainer("cpu", "500m")), want: []string{"1 Insufficient cpu"}},
		{name: "insufficient memory", node: base(), pod: makePod("p", withContainer("memory", "2Gi")),
			want: []string{"1 Insufficient memory"}},
		{name: "insufficient ephemeral storage", node: base(), pod: makePod("p", withContainer("ephemeral-storage", "200Gi")),
			want: []string{"1 Insufficient ephemeral-storage"}},
		{name: "all short resources reported", node: makeNode("n1", "1", "1Gi", 1),
			existing: []*corev1.Pod{makePod("e")},
			pod:      makePod("p", withContainer("cpu", "2", "memory", "2Gi")),
			want:     []string{"1 Insufficient cpu", "1 Insufficient memory", "1 Too many pods"}},
		{name: "too many pods for best-effort pod", node: makeNode("n1", "1", "1Gi", 1),
			existing: []*corev1.Pod{makePod("e")}, pod: makePod("p"), want: []string{"1 Too many pods"}},
		{name: "zero request fits an over-committed node", node: base(),
			existing: []*corev1.Pod{makePod("e", withContainer("cpu", "2"))}, pod: makePod("p", withContainer("memory", "1Mi"))},
		{name: "containers are summed", node: base(),
			pod: makePod("p", withContainer("cpu", "600m"), withContainer("cpu", "600m")), want: []string{"1 Insufficient cpu"}},
		{name: "init container peak counts", node: base(),
			pod: makePod("p", withContainer("cpu", "100m"), withInitContainer(false, "cpu", "1500m")), want: []string{"1 Insufficient cpu"}},
		{name: "overhead counts", node: base(),
			pod: makePod("p", withContainer("cpu", "900m"), withOverhead("cpu", "200m")), want: []string{"1 Insufficient cpu"}},
		{name: "extended resource available", node: base(withAllocatable("example.com/gpu", "2")),
			existing: []*corev1.Pod{makePod("e", withContainer("example.com/gpu", "1"))},
			pod:      makePod("p", withContainer("example.com/gpu", "1"))},
		{name: "extended resource exhausted", node: base(withAllocatable("example.com/gpu", "2")),
			existing: []*corev1.Pod{makePod("e", withContainer("example.com/gpu", "2"))},
			pod:      makePod("p", withContainer("example.com/gpu", "1")), want: []string{"1 Insufficient example.com/gpu"}},
		{name: "extended resource absent on node", node: base(),
			pod: makePod("p", withContainer("example.com/gpu", "1")), want: []string{"1 Insufficient example.com/gpu"}},
		{name: "readiness checked before resources", node: base(withReady(corev1.ConditionFalse)),
			pod: makePod("p", withContainer("cpu", "5")), want: []string{"1 node(s) were not ready"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := nodeWith(tc.node, tc.existing...)
			var d diagnosis
			ok := fits(newPodInfo(tc.pod), n, &d)
			if ok != (tc.want == nil) {
				t.Errorf("fits = %v, want %v (reasons %q)", ok, tc.want == nil, d.reasons())
			}
			if diff := cmp.Diff(tc.want, d.reasons()); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFitErrorMessage(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*corev1.Node
		pod   *corev1.Pod
		want  string
	}{
		{
			name: "kubernetes example",
			nodes: []*corev1.Node{
				makeNode("a", "1", "1Gi", 10, withTaint("node.kubernetes.io/unreachable", "", corev1.TaintEffectNoExecute)),
				makeNode("b", "1", "1Gi", 10),
				makeNode("c", "1", "1Gi", 10),
			},
			pod:  makePod("p", withContainer("cpu", "2")),
			want: "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient cpu.",
		},
		{
			name:  "no nodes",
			pod:   makePod("p"),
			want:  "no nodes available to schedule pods",
			nodes: nil,
		},
		{
			name: "sorted as strings",
			nodes: []*corev1.Node{
				makeNode("a", "1", "1Gi", 10, cordoned()),
				makeNode("b", "1", "1Gi", 10, withReady(corev1.ConditionFalse)),
				makeNode("c", "1", "1Gi", 10, withReady(corev1.ConditionFalse)),
			},
			pod:  makePod("p"),
			want: "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) were not ready.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			for _, n := range tc.nodes {
				c.setNode(n)
			}
			_, err := newCore(c, 0, testRand(1)).schedule(newPodInfo(tc.pod))
			if err == nil {
				t.Fatal("pod was scheduled, want a fit error")
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}
