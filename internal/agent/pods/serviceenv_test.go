package pods

import (
	"context"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func svc(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func TestServiceEnv(t *testing.T) {
	services := []*v1.Service{
		svc("default", "kubernetes", "10.96.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP}),
		svc("shop", "redis-main", "10.96.0.20", v1.ServicePort{Port: 6379, Protocol: v1.ProtocolTCP}),
		svc("shop", "dns", "10.96.0.30", v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP}, v1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: v1.ProtocolTCP}),
		svc("shop", "headless", v1.ClusterIPNone, v1.ServicePort{Port: 80}),
		svc("shop", "external", "", v1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.96.0.40", v1.ServicePort{Port: 80}),
	}
	kubernetes := map[string]string{
		"KUBERNETES_SERVICE_HOST":       "10.96.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT":               "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP":       "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  "443",
		"KUBERNETES_PORT_443_TCP_ADDR":  "10.96.0.1",
	}
	shop := map[string]string{
		"REDIS_MAIN_SERVICE_HOST":        "10.96.0.20",
		"REDIS_MAIN_SERVICE_PORT":        "6379",
		"REDIS_MAIN_PORT":                "tcp://10.96.0.20:6379",
		"REDIS_MAIN_PORT_6379_TCP":       "tcp://10.96.0.20:6379",
		"REDIS_MAIN_PORT_6379_TCP_PROTO": "tcp",
		"REDIS_MAIN_PORT_6379_TCP_PORT":  "6379",
		"REDIS_MAIN_PORT_6379_TCP_ADDR":  "10.96.0.20",
		"DNS_SERVICE_HOST":               "10.96.0.30",
		"DNS_SERVICE_PORT":               "53",
		"DNS_SERVICE_PORT_DNS":           "53",
		"DNS_SERVICE_PORT_DNS_TCP":       "53",
		"DNS_PORT":                       "udp://10.96.0.30:53",
		"DNS_PORT_53_UDP":                "udp://10.96.0.30:53",
		"DNS_PORT_53_UDP_PROTO":          "udp",
		"DNS_PORT_53_UDP_PORT":           "53",
		"DNS_PORT_53_UDP_ADDR":           "10.96.0.30",
		"DNS_PORT_53_TCP":                "tcp://10.96.0.30:53",
		"DNS_PORT_53_TCP_PROTO":          "tcp",
		"DNS_PORT_53_TCP_PORT":           "53",
		"DNS_PORT_53_TCP_ADDR":           "10.96.0.30",
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		ns    string
		links *bool
		want  map[string]string
	}{
		{"own namespace and kubernetes; headless and ExternalName have none", "shop", nil, merge(kubernetes, shop)},
		{"enableServiceLinks false keeps kubernetes only", "shop", ptr.To(false), kubernetes},
		{"the default namespace", "default", nil, kubernetes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns}, Spec: v1.PodSpec{EnableServiceLinks: tc.links}}
			if got := serviceEnv(pod, services); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("serviceEnv:\n got  %v\n want %v", got, tc.want)
			}
		})
	}
}

// TestResolveEnvWithServices: a container's own variables win over a
// service's, $(VAR) sees the services, and service variables come last,
// sorted.
func TestResolveEnvWithServices(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}
	c := &v1.Container{Env: []v1.EnvVar{
		{Name: "B_SERVICE_HOST", Value: "mine"},
		{Name: "URL", Value: "http://$(A_SERVICE_HOST):$(A_SERVICE_PORT)/"},
	}}
	in := envInputs{objects: fakeObjects{}, services: map[string]string{"A_SERVICE_HOST": "10.96.0.5", "A_SERVICE_PORT": "80", "B_SERVICE_HOST": "10.96.0.6"}}
	got, err := resolveEnv(context.Background(), pod, c, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []envVar{
		{"B_SERVICE_HOST", "mine"},
		{"URL", "http://10.96.0.5:80/"},
		{"A_SERVICE_HOST", "10.96.0.5"},
		{"A_SERVICE_PORT", "80"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolveEnv:\n got  %v\n want %v", got, want)
	}
}

// staticServices is a ServiceSource over a fixed list.
type staticServices []*v1.Service

func (s staticServices) Services(context.Context) ([]*v1.Service, error) { return s, nil }

// TestNodeLocalDNSAndServiceLinks: a Manager with the node-local DNS and
// a service source gives a pod the pods' gateway as its nameserver and
// its namespace's services as variables.
func TestNodeLocalDNSAndServiceLinks(t *testing.T) {
	node := testNodeObject()
	node.Spec.PodCIDR = "10.244.3.0/24"
	h := newHarness(t)
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.configure = func(c *Config) {
		c.ClusterDNS, c.NodeLocalDNS = nil, true
		c.Services = staticServices{svc("default", "backend", "10.96.0.50", v1.ServicePort{Port: 80})}
	}
	h.start()
	h.waitFor("the node's pod CIDR", func() bool { n := h.m.node(); return n != nil && n.Spec.PodCIDR != "" })
	pod := testPod("web")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)

	sb := h.rt.sandboxConfigs["app"]
	if got := sb.GetDnsConfig().GetServers(); !reflect.DeepEqual(got, []string{"10.244.3.1"}) {
		t.Errorf("nameservers %v, want the pod CIDR's gateway 10.244.3.1", got)
	}
	env := map[string]string{}
	for _, kv := range h.rt.config("app").GetEnvs() {
		env[kv.Key] = string(kv.Value)
	}
	if env["BACKEND_SERVICE_HOST"] != "10.96.0.50" || env["BACKEND_PORT"] != "tcp://10.96.0.50:80" {
		t.Errorf("environment %v lacks the backend service's variables", env)
	}
}
