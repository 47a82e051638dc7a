package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIngress(t *testing.T) {
	prefix := networkingv1.PathTypePrefix
	backend := func(name string, port int32) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
	}
	newIngress := func() *networkingv1.Ingress {
		return &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptrTo("wharf"),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{"hello.example.test"}, SecretName: "hello-tls"}},
				Rules: []networkingv1.IngressRule{{Host: "hello.example.test", IngressRuleValue: networkingv1.IngressRuleValue{
					HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
						{Path: "/", PathType: &prefix, Backend: backend("hello", 80)},
						{Path: "/api", PathType: &prefix, Backend: backend("api", 8080)},
					}},
				}}},
			},
		}
	}
	path := func(ing *networkingv1.Ingress) *networkingv1.HTTPIngressPath {
		return &ing.Spec.Rules[0].HTTP.Paths[1]
	}
	tests := []struct {
		name   string
		mutate func(*networkingv1.Ingress)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*networkingv1.Ingress) {}},
		{name: "wildcard host", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.test" }},
		{name: "default backend only", mutate: func(i *networkingv1.Ingress) {
			b := backend("hello", 80)
			i.Spec.Rules, i.Spec.DefaultBackend = nil, &b
		}},
		{name: "nothing to route", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules = nil }, want: []wantErr{invalid("spec")}},
		{name: "IP as host", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }, want: []wantErr{invalid("spec.rules[0].host")}},
		{name: "bad host", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "Hello_World" }, want: []wantErr{invalid("spec.rules[0].host")}},
		{name: "wildcard inside", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "a.*.example.test" }, want: []wantErr{invalid("spec.rules[0].host")}},
		{name: "no path type", mutate: func(i *networkingv1.Ingress) { path(i).PathType = nil }, want: []wantErr{required("spec.rules[0].http.paths[1].pathType")}},
		{name: "bad path type", mutate: func(i *networkingv1.Ingress) { path(i).PathType = ptrTo(networkingv1.PathType("Regex")) },
			want: []wantErr{notSupported("spec.rules[0].http.paths[1].pathType")}},
		{name: "relative path", mutate: func(i *networkingv1.Ingress) { path(i).Path = "api" }, want: []wantErr{invalid("spec.rules[0].http.paths[1].path")}},
		{name: "dot segment", mutate: func(i *networkingv1.Ingress) { path(i).Path = "/a/../b" }, want: []wantErr{invalid("spec.rules[0].http.paths[1].path")}},
		{name: "implementation specific may hold anything absolute", mutate: func(i *networkingv1.Ingress) {
			path(i).Path, path(i).PathType = "/a//b", ptrTo(networkingv1.PathTypeImplementationSpecific)
		}},
		{name: "no paths", mutate: func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths = nil }, want: []wantErr{required("spec.rules[0].http.paths")}},
		{name: "no backend", mutate: func(i *networkingv1.Ingress) { path(i).Backend = networkingv1.IngressBackend{} },
			want: []wantErr{invalid("spec.rules[0].http.paths[1].backend")}},
		{name: "bad service name", mutate: func(i *networkingv1.Ingress) { path(i).Backend.Service.Name = "API" },
			want: []wantErr{invalid("spec.rules[0].http.paths[1].backend.service.name")}},
		{name: "no port", mutate: func(i *networkingv1.Ingress) { path(i).Backend.Service.Port = networkingv1.ServiceBackendPort{} },
			want: []wantErr{required("spec.rules[0].http.paths[1].backend.service.port")}},
		{name: "port name and number", mutate: func(i *networkingv1.Ingress) { path(i).Backend.Service.Port.Name = "http" },
			want: []wantErr{invalid("spec.rules[0].http.paths[1].backend.service.port")}},
		{name: "port out of range", mutate: func(i *networkingv1.Ingress) { path(i).Backend.Service.Port.Number = 70000 },
			want: []wantErr{invalid("spec.rules[0].http.paths[1].backend.service.port.number")}},
		{name: "bad secret name", mutate: func(i *networkingv1.Ingress) { i.Spec.TLS[0].SecretName = "Hello TLS" }, want: []wantErr{invalid("spec.tls[0].secretName")}},
		{name: "bad class", mutate: func(i *networkingv1.Ingress) { i.Spec.IngressClassName = ptrTo("Wharf!") }, want: []wantErr{invalid("spec.ingressClassName")}},
		{name: "status address", mutate: func(i *networkingv1.Ingress) {
			i.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "127.0.0.1"}}
		}, want: []wantErr{invalid("status.loadBalancer.ingress[0].ip")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := newIngress()
			tt.mutate(ing)
			checkErrs(t, Ingresses().Validate(ing), tt.want...)
		})
	}
	ing := newIngress()
	ing.CreationTimestamp = ago(20 * time.Second)
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.123.0.193"}}
	if diff := cmp.Diff([]any{"hello", "wharf", "hello.example.test", "10.123.0.193", "80, 443", "20s"}, ingressRow(ing, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestIngressClass(t *testing.T) {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "wharf", CreationTimestamp: ago(time.Minute)},
		Spec: networkingv1.IngressClassSpec{Controller: "wharf.dev/ingress"}}
	r := IngressClasses()
	checkErrs(t, r.Validate(c))
	for _, tc := range []struct {
		controller string
		want       wantErr
	}{
		{"", required("spec.controller")},
		{"nginx", invalid("spec.controller")},
		{"Wharf.dev/ingress", invalid("spec.controller")},
	} {
		bad := c.DeepCopy()
		bad.Spec.Controller = tc.controller
		checkErrs(t, r.Validate(bad), tc.want)
	}
	changed := c.DeepCopy()
	changed.Spec.Controller = "example.com/other"
	checkErrs(t, r.ValidateUpdate(changed, c), invalid("spec.controller"))
	c.Spec.Parameters = &networkingv1.IngressClassParametersReference{Kind: "Config", Name: "c", APIGroup: ptrTo("example.com")}
	if diff := cmp.Diff([]any{"wharf", "wharf.dev/ingress", "Config.example.com/c", "60s"}, ingressClassRow(c, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
