package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newNetworkPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromInt32(5432))}},
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			}},
		},
	}
}

func TestNetworkPolicyDefaults(t *testing.T) {
	got := newNetworkPolicy()
	got.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	NetworkPolicies().Default(got)
	want := newNetworkPolicy()
	want.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	want.Spec.Ingress[0].Ports[0].Protocol = ptrTo(corev1.ProtocolTCP)
	want.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted policy (-want +got):\n%s", diff)
	}
}

func TestNetworkPolicyValidate(t *testing.T) {
	port := func(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicyPort {
		return &np.Spec.Ingress[0].Ports[0]
	}
	peer := func(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicyPeer {
		return &np.Spec.Ingress[0].From[0]
	}
	tests := []struct {
		name   string
		mutate func(*networkingv1.NetworkPolicy)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "deny all", mutate: func(np *networkingv1.NetworkPolicy) {
			np.Spec = networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}
		}},
		{name: "port range", mutate: func(np *networkingv1.NetworkPolicy) { port(np).EndPort = ptrTo(int32(5440)) }},
		{name: "ip block", mutate: func(np *networkingv1.NetworkPolicy) {
			*peer(np) = networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}
		}},
		{name: "bad protocol", mutate: func(np *networkingv1.NetworkPolicy) { port(np).Protocol = ptrTo(corev1.Protocol("ICMP")) },
			want: []wantErr{notSupported("spec.ingress[0].ports[0].protocol")}},
		{name: "port out of range", mutate: func(np *networkingv1.NetworkPolicy) { port(np).Port = ptrTo(intstr.FromInt32(70000)) },
			want: []wantErr{invalid("spec.ingress[0].ports[0].port")}},
		{name: "end before port", mutate: func(np *networkingv1.NetworkPolicy) { port(np).EndPort = ptrTo(int32(80)) },
			want: []wantErr{invalid("spec.ingress[0].ports[0].endPort")}},
		{name: "end with named port", mutate: func(np *networkingv1.NetworkPolicy) {
			port(np).Port, port(np).EndPort = ptrTo(intstr.FromString("pg")), ptrTo(int32(80))
		}, want: []wantErr{invalid("spec.ingress[0].ports[0].endPort")}},
		{name: "empty peer", mutate: func(np *networkingv1.NetworkPolicy) { *peer(np) = networkingv1.NetworkPolicyPeer{} },
			want: []wantErr{required("spec.ingress[0].from[0]")}},
		{name: "ip block and selector", mutate: func(np *networkingv1.NetworkPolicy) { peer(np).IPBlock = &networkingv1.IPBlock{CIDR: "10.0.0.0/8"} },
			want: []wantErr{forbidden("spec.ingress[0].from[0]")}},
		{name: "bad cidr", mutate: func(np *networkingv1.NetworkPolicy) {
			*peer(np) = networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}
		}, want: []wantErr{invalid("spec.ingress[0].from[0].ipBlock.cidr")}},
		{name: "except outside", mutate: func(np *networkingv1.NetworkPolicy) {
			*peer(np) = networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"192.168.0.0/24"}}}
		}, want: []wantErr{invalid("spec.ingress[0].from[0].ipBlock.except[0]")}},
		{name: "policy type", mutate: func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"} },
			want: []wantErr{notSupported("spec.policyTypes[0]")}},
		{name: "egress to", mutate: func(np *networkingv1.NetworkPolicy) {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{}}}}
		}, want: []wantErr{required("spec.egress[0].to[0]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := newNetworkPolicy()
			if tt.mutate != nil {
				tt.mutate(np)
			}
			r := NetworkPolicies()
			r.Default(np)
			checkErrs(t, r.Validate(np), tt.want...)
		})
	}
	np := newNetworkPolicy()
	np.CreationTimestamp = ago(3 * 24 * time.Hour)
	if diff := cmp.Diff([]any{"db", "app=db", "3d"}, networkPolicyRow(np, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
