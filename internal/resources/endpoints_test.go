package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5", NodeName: ptrTo("node-1")}, {IP: "10.244.2.7"}},
			Ports:     []corev1.EndpointPort{{Port: 80}},
		}},
	}
}

func TestEndpointsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Endpoints)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*corev1.Endpoints) {}},
		{name: "no subsets", mutate: func(e *corev1.Endpoints) { e.Subsets = nil }},
		{name: "no addresses", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Addresses = nil }, want: []wantErr{required("subsets[0]")}},
		{name: "bad IP", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "10.244.1" }, want: []wantErr{invalid("subsets[0].addresses[0].ip")}},
		{name: "loopback", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Addresses[1].IP = "127.0.0.1" }, want: []wantErr{invalid("subsets[0].addresses[1].ip")}},
		{name: "unnamed ports", mutate: func(e *corev1.Endpoints) {
			e.Subsets[0].Ports = append(e.Subsets[0].Ports, corev1.EndpointPort{Port: 443})
		},
			want: []wantErr{required("subsets[0].ports[0].name")}},
		{name: "bad port", mutate: func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Port = 0 }, want: []wantErr{invalid("subsets[0].ports[0].port")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoints()
			tt.mutate(e)
			Endpoints().Default(e)
			checkErrs(t, Endpoints().Validate(e), tt.want...)
		})
	}
}

func TestEndpointsRow(t *testing.T) {
	e := newEndpoints()
	e.CreationTimestamp = ago(time.Hour)
	if diff := cmp.Diff([]any{"web", "10.244.1.5:80,10.244.2.7:80", "60m"}, endpointsRow(e, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	e.Subsets[0].Ports = append(e.Subsets[0].Ports, corev1.EndpointPort{Name: "https", Port: 443})
	if got := formatEndpoints(e); got != "10.244.1.5:80,10.244.2.7:80,10.244.1.5:443 + 1 more..." {
		t.Errorf("endpoints = %q", got)
	}
	if got := formatEndpoints(&corev1.Endpoints{}); got != "<none>" {
		t.Errorf("empty endpoints = %q", got)
	}
}

func newEndpointSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}, NodeName: ptrTo("node-1")},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(80))}},
	}
}

func TestEndpointSliceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*discoveryv1.EndpointSlice) {}},
		{name: "address type unknown", mutate: func(s *discoveryv1.EndpointSlice) { s.AddressType = "IPX" }, want: []wantErr{notSupported("addressType")}},
		{name: "IPv6 in IPv4 slice", mutate: func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"fd00::5"} },
			want: []wantErr{invalid("endpoints[0].addresses[0]")}},
		{name: "no addresses", mutate: func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = nil }, want: []wantErr{required("endpoints[0].addresses")}},
		{name: "duplicate port names", mutate: func(s *discoveryv1.EndpointSlice) { s.Ports = append(s.Ports, s.Ports[0]) },
			want: []wantErr{duplicate("ports[1].name")}},
		{name: "protocol unknown", mutate: func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptrTo(corev1.Protocol("GRE")) },
			want: []wantErr{notSupported("ports[0].protocol")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEndpointSlice()
			tt.mutate(s)
			r := EndpointSlices()
			r.Default(s)
			checkErrs(t, r.Validate(s), tt.want...)
		})
	}
	old := newEndpointSlice()
	s := old.DeepCopy()
	s.AddressType = discoveryv1.AddressTypeIPv6
	checkErrs(t, EndpointSlices().ValidateUpdate(s, old), invalid("addressType"))
}

func TestEndpointSliceRow(t *testing.T) {
	s := newEndpointSlice()
	s.CreationTimestamp = ago(3 * time.Minute)
	for _, ip := range []string{"10.244.1.6", "10.244.1.7", "10.244.1.8"} {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}})
	}
	want := []any{"web-abcde", "IPv4", "80", "10.244.1.5,10.244.1.6,10.244.1.7 + 1 more...", "3m"}
	if diff := cmp.Diff(want, endpointSliceRow(s, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
