package pods

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

var testLayout = layout{stateDir: "/var/lib/wharf", cgroupRoot: "/wharf/node1"}

func TestSandboxConfig(t *testing.T) {
	clusterDNS := dnsSettings{clusterDNS: []string{"10.96.0.10"}, clusterDomain: "cluster.local"}
	podNS := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	base := func() *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-web", Attempt: 2},
			Hostname:     "web",
			LogDirectory: "/var/lib/wharf/logs/default_web_uid-web",
			DnsConfig: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:  []string{"ndots:5"},
			},
			Labels: map[string]string{"app": "web", labelPodName: "web", labelPodNamespace: "default", labelPodUID: "uid-web"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent:    "/wharf/node1/poduid-web",
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: podNS},
			},
		}
	}
	tests := []struct {
		name string
		pod  func(*v1.Pod)
		dns  dnsSettings
		want func(*runtimeapi.PodSandboxConfig)
	}{
		{name: "plain pod", dns: clusterDNS},
		{
			name: "annotations, hostname and hostPorts",
			dns:  clusterDNS,
			pod: func(p *v1.Pod) {
				p.Annotations = map[string]string{"note": "x"}
				p.Spec.Hostname = "www"
				p.Spec.Containers[0].Ports = []v1.ContainerPort{
					{ContainerPort: 8080, HostPort: 80, Protocol: v1.ProtocolTCP},
					{ContainerPort: 53, HostPort: 53, Protocol: v1.ProtocolUDP, HostIP: "10.0.0.1"},
					{ContainerPort: 9090},
				}
			},
			want: func(c *runtimeapi.PodSandboxConfig) {
				c.Annotations = map[string]string{"note": "x"}
				c.Hostname = "www"
				c.PortMappings = []*runtimeapi.PortMapping{
					{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: 80},
					{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 53, HostIp: "10.0.0.1"},
				}
			},
		},
		{
			name: "host network keeps the node's hostname and resolv.conf",
			dns:  dnsSettings{clusterDNS: []string{"10.96.0.10"}, clusterDomain: "cluster.local", host: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}}},
			pod:  func(p *v1.Pod) { p.Spec.HostNetwork = true },
			want: func(c *runtimeapi.PodSandboxConfig) {
				c.Hostname = ""
				c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}}
				c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
			},
		},
		{
			name: "security context",
			dns:  clusterDNS,
			pod: func(p *v1.Pod) {
				p.Spec.HostIPC = true
				p.Spec.ShareProcessNamespace = ptr.To(true)
				p.Spec.SecurityContext = &v1.PodSecurityContext{
					RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](2000),
					SupplementalGroups: []int64{5}, FSGroup: ptr.To[int64](3000),
					Sysctls: []v1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}},
				}
				p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)}
			},
			want: func(c *runtimeapi.PodSandboxConfig) {
				c.Linux.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
				c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions:   &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_NODE},
					RunAsUser:          &runtimeapi.Int64Value{Value: 1000},
					RunAsGroup:         &runtimeapi.Int64Value{Value: 2000},
					SupplementalGroups: []int64{5, 3000},
					Privileged:         true,
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("web")
			if tt.pod != nil {
				tt.pod(pod)
			}
			want := base()
			if tt.want != nil {
				tt.want(want)
			}
			got := sandboxConfig(pod, 2, testLayout, tt.dns)
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("sandbox config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodHostname(t *testing.T) {
	b := strings.Repeat("b", 60)
	tests := []struct{ name, hostname, want string }{
		{"web", "", "web"},
		{"web", "www", "www"},
		{"a" + b + "b-cd", "", "a" + b + "b"},
		{"a" + b + ".-xyz", "", "a" + b},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			p := testPod(tt.name)
			p.Spec.Hostname = tt.hostname
			if got := podHostname(p); got != tt.want {
				t.Errorf("podHostname = %q, want %q", got, tt.want)
			}
		})
	}
}
