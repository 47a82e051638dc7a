package coe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func TestWithGroup(t *testing.T) {
	unreachable := corev1.Taint{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute}
	gpu := func(v string) corev1.Taint {
		return corev1.Taint{Key: "gpu", Value: v, Effect: corev1.TaintEffectNoSchedule}
	}
	g := &wharfv1.NodeGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-gpu"}, Spec: wharfv1.NodeGroupSpec{
		Labels: map[string]string{"gpu": "yes"}, Taints: []corev1.Taint{gpu("yes")},
	}}
	node := func(labels, annotations map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "c-gpu-0", Labels: labels, Annotations: annotations},
			Spec: corev1.NodeSpec{Taints: taints}}
	}
	applied := map[string]string{annotationLabels: "gpu," + LabelNodeGroup, annotationTaints: "gpu:NoSchedule"}
	tests := []struct {
		name    string
		in      *corev1.Node
		want    *corev1.Node
		changed bool
	}{{
		name:    "new node",
		in:      node(map[string]string{"kubernetes.io/hostname": "c-gpu-0"}, nil, unreachable),
		want:    node(map[string]string{"kubernetes.io/hostname": "c-gpu-0", "gpu": "yes", LabelNodeGroup: "c-gpu"}, applied, unreachable, gpu("yes")),
		changed: true,
	}, {
		name:    "as the group says",
		in:      node(map[string]string{"gpu": "yes", LabelNodeGroup: "c-gpu"}, applied, gpu("yes")),
		want:    node(map[string]string{"gpu": "yes", LabelNodeGroup: "c-gpu"}, applied, gpu("yes")),
		changed: false,
	}, {
		name: "what the group dropped goes, others' stay",
		in: node(map[string]string{"gpu": "no", "tier": "a", "mine": "1", LabelNodeGroup: "c-gpu"},
			map[string]string{annotationLabels: "gpu,tier," + LabelNodeGroup, annotationTaints: "gpu:NoSchedule,old:NoExecute"},
			corev1.Taint{Key: "old", Effect: corev1.TaintEffectNoExecute}, gpu("no"), unreachable),
		want:    node(map[string]string{"gpu": "yes", "mine": "1", LabelNodeGroup: "c-gpu"}, applied, gpu("yes"), unreachable),
		changed: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := withGroup(tt.in, g)
			if diff := cmp.Diff(tt.want, got); diff != "" || changed != tt.changed {
				t.Errorf("changed %v, want %v; node (-want +got):\n%s", changed, tt.changed, diff)
			}
		})
	}
}

func TestNodeReason(t *testing.T) {
	cond := func(s corev1.ConditionStatus, reason, msg string) *corev1.Node {
		return &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s, Reason: reason, Message: msg}}}}
	}
	tests := []struct {
		node *corev1.Node
		want string
	}{
		{nil, "NotReady: not registered"},
		{&corev1.Node{}, "NotReady: no Ready condition yet"},
		{cond(corev1.ConditionTrue, "AgentReady", ""), "Ready"},
		{cond(corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."), "NotReady: NodeStatusUnknown: Kubelet stopped posting node status."},
		{cond(corev1.ConditionFalse, "", ""), "NotReady: Ready is False"},
	}
	for _, tt := range tests {
		if got := nodeReason(tt.node); got != tt.want {
			t.Errorf("nodeReason = %q, want %q", got, tt.want)
		}
	}
}

// The join token is wharf1.<sha256 of the CA's DER>.<join secret>.
func TestCredentials(t *testing.T) {
	data, err := newCredentials("demo")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := parseCredentials(data)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data[keyCACert])
	sum := sha256.Sum256(block.Bytes)
	if want := "wharf1." + hex.EncodeToString(sum[:]) + "." + string(data[keyJoinSecret]); cr.joinToken != want {
		t.Errorf("join token %q, want %q", cr.joinToken, want)
	}
	if !strings.Contains(string(data[keyCAKey]), "PRIVATE KEY") || cr.adminToken == "" || cr.adminToken == cr.joinSecret {
		t.Errorf("credentials %+v", cr)
	}
	delete(data, keyAdminToken)
	if _, err := parseCredentials(data); err == nil {
		t.Errorf("credentials without an admin token accepted")
	}
}
