package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
}

func TestServiceDefaults(t *testing.T) {
	clusterSpec := func(s *corev1.ServiceSpec) {
		s.Type = corev1.ServiceTypeClusterIP
		s.SessionAffinity = corev1.ServiceAffinityNone
		s.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}}
		s.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicyCluster)
		s.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
		s.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	tests := []struct {
		name string
		in   func(*corev1.Service)
		want func(*corev1.ServiceSpec)
	}{{
		name: "cluster IP",
		want: clusterSpec,
	}, {
		name: "named target port and clusterIP",
		in: func(s *corev1.Service) {
			s.Spec.Ports[0].TargetPort = intstr.FromString("http")
			s.Spec.ClusterIP = "10.96.0.10"
		},
		want: func(s *corev1.ServiceSpec) {
			clusterSpec(s)
			s.Ports[0].TargetPort = intstr.FromString("http")
			s.ClusterIP, s.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}
		},
	}, {
		name: "node port",
		in:   func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort },
		want: func(s *corev1.ServiceSpec) {
			clusterSpec(s)
			s.Type = corev1.ServiceTypeNodePort
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		},
	}, {
		name: "load balancer",
		in:   func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer },
		want: func(s *corev1.ServiceSpec) {
			clusterSpec(s)
			s.Type = corev1.ServiceTypeLoadBalancer
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.AllocateLoadBalancerNodePorts = ptrTo(true)
		},
	}, {
		name: "external name",
		in: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
		},
		want: func(s *corev1.ServiceSpec) {
			*s = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", SessionAffinity: corev1.ServiceAffinityNone}
		},
	}, {
		name: "client IP affinity",
		in:   func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP },
		want: func(s *corev1.ServiceSpec) {
			clusterSpec(s)
			s.SessionAffinity = corev1.ServiceAffinityClientIP
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(int32(10800))}}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newService()
			if tt.in != nil {
				tt.in(got)
			}
			Services().Default(got)
			want := newService()
			tt.want(&want.Spec)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaulted service (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []wantErr
	}{
		{name: "cluster IP is valid", mutate: func(*corev1.Service) {}},
		{name: "allocated IP is valid", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.1" }},
		{name: "headless without ports is valid", mutate: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil }},
		{name: "external name is valid", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}
		}},
		{name: "node port is valid", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}
		}},
		{name: "name must be a DNS-1035 label", mutate: func(s *corev1.Service) { s.Name = "1web" }, want: []wantErr{invalid("metadata.name")}},
		{name: "dotted name", mutate: func(s *corev1.Service) { s.Name = "web.v1" }, want: []wantErr{invalid("metadata.name")}},
		{name: "no ports", mutate: func(s *corev1.Service) { s.Spec.Ports = nil }, want: []wantErr{required("spec.ports")}},
		{name: "unnamed ports", mutate: func(s *corev1.Service) { s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 443}) },
			want: []wantErr{required("spec.ports[0].name"), required("spec.ports[1].name")}},
		{name: "duplicate port names", mutate: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: 80}, {Name: "p", Port: 81}}
		}, want: []wantErr{duplicate("spec.ports[1].name")}},
		{name: "duplicate port and protocol", mutate: func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}, want: []wantErr{duplicate("spec.ports[1]")}},
		{name: "port zero", mutate: func(s *corev1.Service) { s.Spec.Ports[0].Port, s.Spec.Ports[0].TargetPort = 0, intstr.FromInt32(80) },
			want: []wantErr{invalid("spec.ports[0].port")}},
		{name: "port too big", mutate: func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }, want: []wantErr{invalid("spec.ports[0].port")}},
		{name: "targetPort bad name", mutate: func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http_alt") },
			want: []wantErr{invalid("spec.ports[0].targetPort")}},
		{name: "targetPort too big", mutate: func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(65536) },
			want: []wantErr{invalid("spec.ports[0].targetPort")}},
		{name: "protocol unknown", mutate: func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, want: []wantErr{notSupported("spec.ports[0].protocol")}},
		{name: "type unknown", mutate: func(s *corev1.Service) { s.Spec.Type = "Magic" }, want: []wantErr{notSupported("spec.type")}},
		{name: "nodePort on ClusterIP", mutate: func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }, want: []wantErr{forbidden("spec.ports[0].nodePort")}},
		{name: "duplicate nodePorts", mutate: func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80, NodePort: 30080}, {Name: "b", Port: 81, NodePort: 30080}}
		}, want: []wantErr{duplicate("spec.ports[1].nodePort")}},
		{name: "headless node port", mutate: func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, corev1.ClusterIPNone
		},
			want: []wantErr{invalid("spec.clusterIPs[0]")}},
		{name: "external name missing", mutate: func(s *corev1.Service) { s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName} },
			want: []wantErr{required("spec.externalName")}},
		{name: "external name with cluster IP", mutate: func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db", ClusterIP: "10.96.0.3"}
		}, want: []wantErr{forbidden("spec.clusterIPs")}},
		{name: "bad cluster IP", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0" }, want: []wantErr{invalid("spec.clusterIPs[0]")}},
		{name: "clusterIP and clusterIPs disagree", mutate: func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.1", []string{"10.96.0.2"}
		}, want: []wantErr{invalid("spec.clusterIPs")}},
		{name: "IPv6 address for IPv4 family", mutate: func(s *corev1.Service) { s.Spec.ClusterIP = "fd00::1" }, want: []wantErr{invalid("spec.clusterIPs[0]")}},
		{name: "session affinity unknown", mutate: func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }, want: []wantErr{notSupported("spec.sessionAffinity")}},
		{name: "bad selector", mutate: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "a b"} }, want: []wantErr{invalid("spec.selector")}},
		{name: "bad external IP", mutate: func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"nope"} }, want: []wantErr{invalid("spec.externalIPs[0]")}},
		{name: "source ranges without load balancer", mutate: func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} },
			want: []wantErr{forbidden("spec.loadBalancerSourceRanges")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService()
			tt.mutate(svc)
			r := Services()
			r.Default(svc)
			checkErrs(t, r.Validate(svc), tt.want...)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	allocated := func(typ corev1.ServiceType) *corev1.Service {
		s := newService()
		s.Spec.Type = typ
		Services().Default(s)
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.20", []string{"10.96.0.20"}
		if needsNodePort(s) {
			s.Spec.Ports[0].NodePort = 30080
		}
		return s
	}
	tests := []struct {
		name   string
		old    *corev1.Service
		update func(*corev1.Service)
		check  func(*testing.T, *corev1.Service)
		want   []wantErr
	}{
		{name: "replace without clusterIP keeps it", old: allocated(corev1.ServiceTypeClusterIP),
			update: func(s *corev1.Service) { *s = *newService() },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "10.96.0.20" || len(s.Spec.ClusterIPs) != 1 {
					t.Errorf("clusterIP %q %v, want the old one kept", s.Spec.ClusterIP, s.Spec.ClusterIPs)
				}
			}},
		{name: "replace without nodePort keeps it", old: allocated(corev1.ServiceTypeNodePort),
			update: func(s *corev1.Service) { *s = *newService(); s.Spec.Type = corev1.ServiceTypeNodePort },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 30080 {
					t.Errorf("nodePort %d, want 30080 kept", s.Spec.Ports[0].NodePort)
				}
			}},
		{name: "NodePort to ClusterIP drops the node port", old: allocated(corev1.ServiceTypeNodePort),
			update: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP },
			check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
					t.Errorf("nodePort %d, externalTrafficPolicy %q; want them dropped", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
				}
			}},
		{name: "ClusterIP to ExternalName drops the addresses", old: allocated(corev1.ServiceTypeClusterIP),
			update: func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.com"
			}},
		{name: "clusterIP may not change", old: allocated(corev1.ServiceTypeClusterIP),
			update: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.21", []string{"10.96.0.21"} },
			want:   []wantErr{invalid("spec.clusterIPs[0]")}},
		{name: "headless may not get an IP", old: func() *corev1.Service {
			s := newService()
			s.Spec.ClusterIP = corev1.ClusterIPNone
			Services().Default(s)
			return s
		}(), update: func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.9", []string{"10.96.0.9"} },
			want: []wantErr{invalid("spec.clusterIPs[0]")}},
		{name: "ports may change", old: allocated(corev1.ServiceTypeClusterIP),
			update: func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(8080) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Services()
			svc := tt.old.DeepCopy()
			tt.update(svc)
			r.Default(svc)
			r.PrepareForUpdate(svc, tt.old)
			if tt.check != nil {
				tt.check(t, svc)
			}
			errs := append(r.Validate(svc), r.ValidateUpdate(svc, tt.old)...)
			checkErrs(t, errs, tt.want...)
		})
	}
}

func TestServiceRow(t *testing.T) {
	created := ago(26 * time.Hour)
	tests := []struct {
		name string
		svc  corev1.Service
		want []any
	}{
		{name: "cluster IP", svc: corev1.Service{Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.1"}, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}}},
			want: []any{"s", "ClusterIP", "10.96.0.1", "<none>", "80/TCP,53/UDP", "26h", "app=web"}},
		{name: "node port", svc: corev1.Service{Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.0.2"}, ExternalIPs: []string{"192.0.2.1"},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: "TCP"}}}},
			want: []any{"s", "NodePort", "10.96.0.2", "192.0.2.1", "80:30080/TCP", "26h", "<none>"}},
		{name: "pending load balancer", svc: corev1.Service{Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.3"}, Ports: []corev1.ServicePort{{Port: 443, NodePort: 31443, Protocol: "TCP"}}}},
			want: []any{"s", "LoadBalancer", "10.96.0.3", "<pending>", "443:31443/TCP", "26h", "<none>"}},
		{name: "load balancer", svc: corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.3"}},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}}}}},
			want: []any{"s", "LoadBalancer", "10.96.0.3", "203.0.113.9,lb.example.com", "<none>", "26h", "<none>"}},
		{name: "headless", svc: corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"None"}}},
			want: []any{"s", "ClusterIP", "None", "<none>", "<none>", "26h", "<none>"}},
		{name: "external name", svc: corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
			want: []any{"s", "ExternalName", "<none>", "db.example.com", "<none>", "26h", "<none>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.svc.Name, tt.svc.CreationTimestamp = "s", created
			if diff := cmp.Diff(tt.want, serviceRow(&tt.svc, testNow)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
