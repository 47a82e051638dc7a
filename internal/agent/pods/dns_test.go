package pods

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestDNSConfig(t *testing.T) {
	host := &runtimeapi.DNSConfig{Servers: []string{"192.168.1.1"}, Searches: []string{"corp.example"}, Options: []string{"ndots:1", "timeout:2"}}
	cluster := dnsSettings{clusterDNS: []string{"10.96.0.10"}, clusterDomain: "cluster.local", host: host}
	clusterSearch := []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	tests := []struct {
		name string
		pod  func(*v1.Pod)
		dns  dnsSettings
		want *runtimeapi.DNSConfig
	}{
		{
			name: "ClusterFirst",
			dns:  cluster,
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(clusterSearch, "corp.example"), Options: []string{"ndots:5"}},
		},
		{
			name: "ClusterFirst without cluster DNS falls back to the node's",
			dns:  dnsSettings{host: host},
			want: host,
		},
		{
			name: "ClusterFirst on the host network is Default",
			dns:  cluster,
			pod:  func(p *v1.Pod) { p.Spec.HostNetwork = true },
			want: host,
		},
		{
			name: "ClusterFirstWithHostNet",
			dns:  cluster,
			pod:  func(p *v1.Pod) { p.Spec.HostNetwork = true; p.Spec.DNSPolicy = v1.DNSClusterFirstWithHostNet },
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: append(clusterSearch, "corp.example"), Options: []string{"ndots:5"}},
		},
		{
			name: "Default without a node resolv.conf leaves it to the runtime",
			dns:  dnsSettings{clusterDNS: []string{"10.96.0.10"}},
			pod:  func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSDefault },
			want: nil,
		},
		{
			// An empty file would make containerd copy the machine's.
			name: "Default with a node that has no nameserver gets none, not the machine's",
			dns:  dnsSettings{clusterDNS: []string{"10.96.0.10"}, host: &runtimeapi.DNSConfig{}},
			pod:  func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSDefault },
			want: &runtimeapi.DNSConfig{Options: []string{"ndots:1"}},
		},
		{
			name: "ClusterFirst without cluster DNS on a node without nameserver",
			dns:  dnsSettings{host: &runtimeapi.DNSConfig{}},
			want: &runtimeapi.DNSConfig{Options: []string{"ndots:1"}},
		},
		{
			name: "None takes the pod's dnsConfig only",
			dns:  cluster,
			pod: func(p *v1.Pod) {
				p.Spec.DNSPolicy = v1.DNSNone
				p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"8.8.8.8"}, Searches: []string{"a.example"}, Options: []v1.PodDNSConfigOption{{Name: "edns0"}}}
			},
			want: &runtimeapi.DNSConfig{Servers: []string{"8.8.8.8"}, Searches: []string{"a.example"}, Options: []string{"edns0"}},
		},
		{
			name: "dnsConfig merges: extra servers and searches, options override by name, duplicates and excess dropped",
			dns:  cluster,
			pod: func(p *v1.Pod) {
				p.Spec.DNSConfig = &v1.PodDNSConfig{
					Nameservers: []string{"10.96.0.10", "1.1.1.1", "8.8.8.8", "9.9.9.9"},
					Searches:    []string{"svc.cluster.local", "extra.example"},
					Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "single-request"}},
				}
			},
			want: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10", "1.1.1.1", "8.8.8.8"},
				Searches: append(clusterSearch, "corp.example", "extra.example"),
				Options:  []string{"ndots:2", "single-request"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("dns")
			pod.Namespace = "ns1"
			if tt.pod != nil {
				tt.pod(pod)
			}
			got := dnsConfig(pod, tt.dns)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("dns config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# generated\nnameserver 10.0.0.2\nnameserver 10.0.0.3 # second\nsearch a.example b.example\noptions ndots:2 rotate\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.DNSConfig{Servers: []string{"10.0.0.2", "10.0.0.3"}, Searches: []string{"a.example", "b.example"}, Options: []string{"ndots:2", "rotate"}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing"), ""} {
		got, err := ReadResolvConf(path)
		if err != nil || got == nil || len(got.Servers)+len(got.Searches)+len(got.Options) != 0 {
			t.Errorf("resolv.conf %q: %v, %v; want an empty configuration (no nameserver)", path, got, err)
		}
	}
}
