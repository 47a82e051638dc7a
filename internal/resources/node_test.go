package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.50.2"}, {Type: corev1.NodeHostName, Address: "node-1"}},
		},
	}
}

func TestNodeDefaults(t *testing.T) {
	n := newNode()
	r := Nodes()
	r.Default(n)
	if diff := cmp.Diff([]string{"10.244.1.0/24"}, n.Spec.PodCIDRs); diff != "" {
		t.Errorf("podCIDRs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(n.Status.Capacity, n.Status.Allocatable); diff != "" {
		t.Errorf("allocatable defaults to capacity (-capacity +allocatable):\n%s", diff)
	}
	if !r.KeepStatusOnCreate || !r.HasStatus {
		t.Errorf("nodes must keep the status an agent registers with")
	}
}

func TestNodeValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Node)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*corev1.Node) {}},
		{name: "valid taints", mutate: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, {Key: "dedicated", Effect: corev1.TaintEffectNoExecute}}
		}},
		{name: "bad name", mutate: func(n *corev1.Node) { n.Name = "Node_1" }, want: []wantErr{invalid("metadata.name")}},
		{name: "bad podCIDR", mutate: func(n *corev1.Node) { n.Spec.PodCIDR = "10.244.1.0/33" }, want: []wantErr{invalid("spec.podCIDRs[0]")}},
		{name: "two IPv4 podCIDRs", mutate: func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0/24", "10.245.1.0/24"} },
			want: []wantErr{invalid("spec.podCIDRs")}},
		{name: "taint without effect", mutate: func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k"}} }, want: []wantErr{required("spec.taints[0].effect")}},
		{name: "taint effect unknown", mutate: func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: "Evict"}} },
			want: []wantErr{notSupported("spec.taints[0].effect")}},
		{name: "taint bad key", mutate: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "a b", Effect: corev1.TaintEffectNoSchedule}}
		},
			want: []wantErr{invalid("spec.taints[0].key")}},
		{name: "duplicate taint", mutate: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Value: "1", Effect: corev1.TaintEffectNoSchedule}, {Key: "k", Value: "2", Effect: corev1.TaintEffectNoSchedule}}
		}, want: []wantErr{duplicate("spec.taints[1]")}},
		{name: "negative capacity", mutate: func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("-1") },
			want: []wantErr{invalid("status.capacity[cpu]")}},
		{name: "duplicate address", mutate: func(n *corev1.Node) { n.Status.Addresses = append(n.Status.Addresses, n.Status.Addresses[0]) },
			want: []wantErr{duplicate("status.addresses[2]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode()
			tt.mutate(n)
			Nodes().Default(n)
			checkErrs(t, Nodes().Validate(n), tt.want...)
		})
	}
}

func TestNodeValidateUpdate(t *testing.T) {
	old := newNode()
	Nodes().Default(old)
	n := old.DeepCopy()
	n.Spec.Unschedulable = true
	n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}}
	checkErrs(t, Nodes().ValidateUpdate(n, old))
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.9.0/24", []string{"10.244.9.0/24"}
	checkErrs(t, Nodes().ValidateUpdate(n, old), forbidden("spec.podCIDRs"))

	unset := old.DeepCopy()
	unset.Spec.PodCIDR, unset.Spec.PodCIDRs = "", nil
	checkErrs(t, Nodes().ValidateUpdate(old, unset))
}

func TestNodeRow(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: s}}
	}
	tests := []struct {
		name          string
		conds         []corev1.NodeCondition
		unschedulable bool
		labels        map[string]string
		status, roles string
	}{
		{name: "ready", conds: ready(corev1.ConditionTrue), status: "Ready", roles: "<none>"},
		{name: "not ready", conds: ready(corev1.ConditionFalse), status: "NotReady", roles: "<none>"},
		{name: "unknown ready", conds: ready(corev1.ConditionUnknown), status: "NotReady", roles: "<none>"},
		{name: "no conditions", status: "Unknown", roles: "<none>"},
		{name: "cordoned", conds: ready(corev1.ConditionTrue), unschedulable: true, status: "Ready,SchedulingDisabled", roles: "<none>"},
		{name: "roles", conds: ready(corev1.ConditionTrue), status: "Ready", roles: "control-plane,worker",
			labels: map[string]string{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: tt.labels, CreationTimestamp: ago(45 * time.Minute)},
				Spec:       corev1.NodeSpec{Unschedulable: tt.unschedulable},
				Status: corev1.NodeStatus{
					Conditions: tt.conds,
					NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-wharf", OSImage: "Debian GNU/Linux 13", KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://1.6.20"},
					Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.50.2"}},
				},
			}
			want := []any{"node-1", tt.status, tt.roles, "45m", "v1.33.0-wharf", "192.168.50.2", "<none>", "Debian GNU/Linux 13", "6.12.0", "containerd://1.6.20"}
			if diff := cmp.Diff(want, nodeRow(n, testNow)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
	n := &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}}
	if !fields.ParseSelectorOrDie("spec.unschedulable=true").Matches(Nodes().SelectableFields(n)) {
		t.Errorf("spec.unschedulable not selectable")
	}
}
