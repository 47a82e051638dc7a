package routes

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// node makes a Node with a pod CIDR ("" for none) and InternalIPs.
func node(name, podCIDR string, ips ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR = podCIDR
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func route(dst, via, node string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Node: node}
}

func TestDesired(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*corev1.Node
		want  []Route
	}{
		{"alone", []*corev1.Node{node("a", "10.244.0.0/24", "10.123.0.2")}, nil},
		{"others", []*corev1.Node{
			node("c", "10.244.2.0/24", "10.123.0.4"),
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("b", "10.244.1.0/24", "10.123.0.3"),
		}, []Route{route("10.244.1.0/24", "10.123.0.3", "b"), route("10.244.2.0/24", "10.123.0.4", "c")}},
		{"no pod CIDR yet, no address, our own CIDR unknown", []*corev1.Node{
			node("a", ""),
			node("b", "", "10.123.0.3"),
			node("c", "10.244.2.0/24"),
			node("d", "10.244.3.0/24", "10.123.0.5"),
		}, []Route{route("10.244.3.0/24", "10.123.0.5", "d")}},
		{"the first node by name keeps a CIDR two claim", []*corev1.Node{
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("c", "10.244.1.0/24", "10.123.0.4"),
			node("b", "10.244.1.0/24", "10.123.0.3"),
		}, []Route{route("10.244.1.0/24", "10.123.0.3", "b")}},
		{"a CIDR overlapping ours", []*corev1.Node{
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("b", "10.244.0.0/16", "10.123.0.3"),
		}, nil},
		{"the address of the CIDR's family", []*corev1.Node{
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("b", "fd00:10::/64", "10.123.0.3"),
			node("c", "fd00:11::/64", "10.123.0.4", "fd00::4"),
		}, []Route{route("fd00:11::/64", "fd00::4", "c")}},
		{"a gateway inside its own CIDR", []*corev1.Node{
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("b", "10.244.1.0/24", "10.244.1.1"),
		}, nil},
		{"bad values", []*corev1.Node{
			node("a", "10.244.0.0/24", "10.123.0.2"),
			node("b", "not-a-cidr", "10.123.0.3"),
			node("c", "10.244.2.0/24", "not-an-ip"),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Desired("a", tt.nodes)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
		})
	}
}
