package speaker

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/network/announce"
)

func newLB(name, ip string, local bool) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster}}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if ip != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	}
	return s
}

func slice(name, service string, nodes ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: service}}}
	for _, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.1"}, NodeName: &n})
	}
	return es
}

// TestDesired: which addresses each of three nodes holds, by the same
// rule on every node: exactly one holder per address among the live,
// not excluded nodes (with a ready endpoint, for Local).
func TestDesired(t *testing.T) {
	hb := netip.MustParseAddrPort("10.0.0.1:7946")
	tests := []struct {
		name     string
		alive    []string
		nodes    map[string]node
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		// want: the holder of each address ("" none)
		want map[string]string
	}{
		{
			name:     "cluster policy: one holder among the live nodes",
			alive:    []string{"a", "b", "c"},
			nodes:    map[string]node{"a": {heartbeat: hb}, "b": {heartbeat: hb}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("web", "10.0.0.100", false), newLB("api", "10.0.0.101", false)},
			want:     map[string]string{"10.0.0.100": announce.Owner(netip.MustParseAddr("10.0.0.100"), []string{"a", "b", "c"}), "10.0.0.101": announce.Owner(netip.MustParseAddr("10.0.0.101"), []string{"a", "b", "c"})},
		},
		{
			name:     "a dead node holds nothing",
			alive:    []string{"a", "c"},
			nodes:    map[string]node{"a": {heartbeat: hb}, "b": {heartbeat: hb}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("web", "10.0.0.100", false)},
			want:     map[string]string{"10.0.0.100": announce.Owner(netip.MustParseAddr("10.0.0.100"), []string{"a", "c"})},
		},
		{
			name:     "excluded nodes and nodes without heartbeats hold nothing",
			alive:    []string{"a", "b", "c"},
			nodes:    map[string]node{"a": {heartbeat: hb, excluded: true}, "b": {}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("web", "10.0.0.100", false)},
			want:     map[string]string{"10.0.0.100": "c"},
		},
		{
			name:     "local policy: a node with a ready endpoint",
			alive:    []string{"a", "b", "c"},
			nodes:    map[string]node{"a": {heartbeat: hb}, "b": {heartbeat: hb}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("web", "10.0.0.100", true)},
			slices:   []*discoveryv1.EndpointSlice{slice("web-1", "web", "b"), slice("other-1", "other", "a", "c")},
			want:     map[string]string{"10.0.0.100": "b"},
		},
		{
			name:     "local policy without endpoints: no holder",
			alive:    []string{"a", "b", "c"},
			nodes:    map[string]node{"a": {heartbeat: hb}, "b": {heartbeat: hb}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("web", "10.0.0.100", true)},
			want:     map[string]string{"10.0.0.100": ""},
		},
		{
			name:  "pending and ClusterIP services: nothing",
			alive: []string{"a", "b", "c"},
			nodes: map[string]node{"a": {heartbeat: hb}, "b": {heartbeat: hb}, "c": {heartbeat: hb}},
			services: []*corev1.Service{newLB("pending", "", false), func() *corev1.Service {
				s := newLB("cip", "10.0.0.102", false)
				s.Spec.Type = corev1.ServiceTypeClusterIP
				return s
			}()},
			want: map[string]string{"10.0.0.102": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alive := map[string]bool{}
			for _, n := range tt.alive {
				alive[n] = true
			}
			held := map[string][]string{}
			for _, self := range []string{"a", "b", "c"} {
				s := New(Config{NodeName: self})
				s.nodes = tt.nodes
				for _, svc := range tt.services {
					s.UpdateService(svc)
				}
				for _, es := range tt.slices {
					s.UpdateEndpointSlice(es)
				}
				a := map[string]bool{self: true}
				for n := range alive {
					a[n] = true
				}
				if !alive[self] {
					continue // a dead node decides nothing
				}
				for _, ip := range s.desired(a) {
					held[ip.String()] = append(held[ip.String()], self)
				}
			}
			for ip, want := range tt.want {
				got := held[ip]
				if (want == "" && len(got) != 0) || (want != "" && !slices.Equal(got, []string{want})) {
					t.Errorf("%s held by %v, want %q", ip, got, want)
				}
			}
		})
	}
}
