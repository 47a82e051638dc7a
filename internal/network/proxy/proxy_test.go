package proxy

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

var (
	tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	cidr     = netip.MustParsePrefix("10.0.0.0/16")
	httpPort = []discoveryv1.EndpointPort{eport("http", tcp, 8080)}
)

// TestSkeleton: the fixed part of the table, which every Sync keeps.
func TestSkeleton(t *testing.T) {
	p := newFakeProxy(t, Config{ClusterCIDR: cidr})
	p.sync(t)
	want := []string{
		`add table { comment "wharf service proxy" ; }`,
		`add chain cluster-ips-check`,
		`add chain endpoints-check`,
		`add chain filter-forward { type filter hook forward priority 0 ; }`,
		`add chain filter-input { type filter hook input priority 0 ; }`,
		`add chain filter-output { type filter hook output priority 0 ; }`,
		`add chain mark-for-masquerade`,
		`add chain masquerading`,
		`add chain nat-output { type nat hook output priority -100 ; }`,
		`add chain nat-postrouting { type nat hook postrouting priority 100 ; }`,
		`add chain nat-prerouting { type nat hook prerouting priority -100 ; }`,
		`add chain reject-chain`,
		`add chain services`,
		`add set cluster-ips { type ipv4_addr ; }`,
		`add set hairpin { type ipv4_addr . ipv4_addr ; }`,
		`add map endpoints-sctp { typeof ip daddr . sctp dport . numgen random mod 1 : ip daddr . sctp dport ; }`,
		`add map endpoints-tcp { typeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport ; }`,
		`add map endpoints-udp { typeof ip daddr . udp dport . numgen random mod 1 : ip daddr . udp dport ; }`,
		`add map no-endpoint-nodeports { type inet_proto . inet_service : verdict ; }`,
		`add map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
		`add map nodeport-endpoints-sctp { typeof sctp dport . numgen random mod 1 : ip daddr . sctp dport ; }`,
		`add map nodeport-endpoints-tcp { typeof tcp dport . numgen random mod 1 : ip daddr . tcp dport ; }`,
		`add map nodeport-endpoints-udp { typeof udp dport . numgen random mod 1 : ip daddr . udp dport ; }`,
		`add map service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
		`add map service-nodeports { type inet_proto . inet_service : verdict ; }`,
		`add rule cluster-ips-check ip daddr @cluster-ips goto reject-chain`,
		`add rule endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
		`add rule filter-forward ct state new jump endpoints-check`,
		`add rule filter-forward ct state new jump cluster-ips-check`,
		`add rule filter-input ct state new jump endpoints-check`,
		`add rule filter-input ct state new jump cluster-ips-check`,
		`add rule filter-output ct state new jump endpoints-check`,
		`add rule filter-output ct state new jump cluster-ips-check`,
		`add rule mark-for-masquerade mark set mark or 0x4000`,
		`add rule masquerading ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade`,
		`add rule masquerading mark and 0x4000 == 0 return`,
		`add rule masquerading mark set mark xor 0x4000`,
		`add rule masquerading masquerade fully-random`,
		`add rule nat-output jump services`,
		`add rule nat-postrouting jump masquerading`,
		`add rule nat-prerouting jump services`,
		`add rule reject-chain meta l4proto tcp reject with tcp reset`,
		`add rule reject-chain reject`,
		`add rule services ip daddr . meta l4proto . th dport vmap @service-ips`,
	}
	if diff := cmp.Diff(want, p.dump()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

// TestRules: what services and slices put in the table, beyond the
// skeleton.
func TestRules(t *testing.T) {
	const chain = "service-HASH-ns/web/tcp/http"
	for _, tc := range []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		noCIDR   bool
		want     []string
	}{{
		name:     "two endpoints",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		slices:   []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, ep("10.0.0.6"), ep("10.0.0.5"))},
		want: join(pickLines(2, true), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 1 : 10.0.0.6 . 8080 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element hairpin { 10.0.0.6 . 10.0.0.6 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-2 }",
		}),
	}, {
		name:     "no cluster CIDR: nothing masqueraded but hairpin",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		slices:   []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5"))},
		noCIDR:   true,
		want: join(pickLines(1, false), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-1 }",
		}),
	}, {
		name:     "no slice: rejected",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		want: []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }",
		},
	}, {
		name:     "not ready and terminating endpoints dropped",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		slices: []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort,
			notReady(ep("10.0.0.5")), terminating(ep("10.0.0.6")),
			discoveryv1.Endpoint{Addresses: []string{"10.0.0.7"}}, // ready unset: ready
		)},
		want: join(pickLines(1, true), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.7 . 8080 }",
			"add element hairpin { 10.0.0.7 . 10.0.0.7 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-1 }",
		}),
	}, {
		name:     "only unusable endpoints: rejected",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		slices:   []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, notReady(ep("10.0.0.5")))},
		want: []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }",
		},
	}, {
		name: "ports matched by name across slices; a port no slice has is rejected",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10",
			sport("http", tcp, 80), sport("metrics", tcp, 9090), sport("dns", udp, 53))},
		slices: []*discoveryv1.EndpointSlice{
			eslice("ns", "web-1", "web", []discoveryv1.EndpointPort{eport("metrics", tcp, 9100), eport("http", tcp, 8080)}, ep("10.0.0.5")),
			eslice("ns", "web-2", "web", []discoveryv1.EndpointPort{eport("http", tcp, 8081)}, ep("10.0.0.6")),
			eslice("ns", "web-3", "web", []discoveryv1.EndpointPort{eport("dns", tcp, 53)}, ep("10.0.0.7")), // wrong protocol
		},
		want: join(pickLines(1, true)[:1], pickLines(2, true)[:1], pickLines(1, true)[1:], pickLines(2, true)[1:], []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 1 : 10.0.0.6 . 8081 }",
			"add element endpoints-tcp { 10.96.0.10 . 9090 . 0 : 10.0.0.5 . 9100 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element hairpin { 10.0.0.6 . 10.0.0.6 }",
			"add element no-endpoint-services { 10.96.0.10 . udp . 53 : goto reject-chain }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-2 }",
			"add element service-ips { 10.96.0.10 . tcp . 9090 : goto pick-1 }",
		}),
	}, {
		name:     "UDP",
		services: []*corev1.Service{svc("kube-system", "dns", "10.96.0.53", sport("dns", udp, 53))},
		slices: []*discoveryv1.EndpointSlice{eslice("kube-system", "dns-1", "dns",
			[]discoveryv1.EndpointPort{eport("dns", udp, 5353)}, ep("10.0.1.2"))},
		want: join(pickLines(1, true), []string{
			"add element cluster-ips { 10.96.0.53 }",
			"add element endpoints-udp { 10.96.0.53 . 53 . 0 : 10.0.1.2 . 5353 }",
			"add element hairpin { 10.0.1.2 . 10.0.1.2 }",
			"add element service-ips { 10.96.0.53 . udp . 53 : goto pick-1 }",
		}),
	}, {
		name: "headless and ExternalName: nothing",
		services: []*corev1.Service{
			svc("ns", "web", "None", sport("http", tcp, 80)),
			{ObjectMeta: svc("ns", "ext", "", sport("http", tcp, 80)).ObjectMeta,
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", Ports: []corev1.ServicePort{sport("http", tcp, 80)}}},
		},
		slices: []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5")),
			eslice("ns", "ext-1", "ext", httpPort, ep("10.0.0.6"))},
	}, {
		name:     "session affinity",
		services: []*corev1.Service{withAffinity(svc("ns", "web", "10.96.0.10", sport("http", tcp, 80)), 60)},
		slices:   []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5"), ep("10.0.0.6"))},
		want: []string{
			"add chain " + chain,
			"add set affinity-HASH-ns/web/tcp/http__10.0.0.5/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }",
			"add set affinity-HASH-ns/web/tcp/http__10.0.0.6/8080 { type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }",
			"add rule " + chain + " ip saddr != 10.0.0.0/16 jump mark-for-masquerade",
			"add rule " + chain + " ip saddr @affinity-HASH-ns/web/tcp/http__10.0.0.5/8080 meta l4proto tcp update @affinity-HASH-ns/web/tcp/http__10.0.0.5/8080 { ip saddr } dnat to 10.0.0.5:8080",
			"add rule " + chain + " ip saddr @affinity-HASH-ns/web/tcp/http__10.0.0.6/8080 meta l4proto tcp update @affinity-HASH-ns/web/tcp/http__10.0.0.6/8080 { ip saddr } dnat to 10.0.0.6:8080",
			"add rule " + chain + " meta l4proto tcp numgen random mod 2 == 0 update @affinity-HASH-ns/web/tcp/http__10.0.0.5/8080 { ip saddr } dnat to 10.0.0.5:8080",
			"add rule " + chain + " meta l4proto tcp update @affinity-HASH-ns/web/tcp/http__10.0.0.6/8080 { ip saddr } dnat to 10.0.0.6:8080",
			"add element cluster-ips { 10.96.0.10 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element hairpin { 10.0.0.6 . 10.0.0.6 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto " + chain + " }",
		},
	}, {
		name: "internalTrafficPolicy Local: this node's endpoints, rejected without",
		services: []*corev1.Service{
			withLocal(svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))),
			withLocal(svc("ns", "far", "10.96.0.11", sport("http", tcp, 80))),
		},
		slices: []*discoveryv1.EndpointSlice{
			eslice("ns", "web-1", "web", httpPort, onNode(ep("10.0.0.5"), "node-a"), onNode(ep("10.0.1.5"), "node-b"), ep("10.0.2.5")),
			eslice("ns", "far-1", "far", httpPort, onNode(ep("10.0.1.6"), "node-b")),
		},
		want: join(pickLines(1, true), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element cluster-ips { 10.96.0.11 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element no-endpoint-services { 10.96.0.11 . tcp . 80 : goto reject-chain }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-1 }",
		}),
	}, {
		name:     "hairpin only for endpoints that may be this node's pods",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))},
		slices: []*discoveryv1.EndpointSlice{
			eslice("ns", "web-1", "web", httpPort, onNode(ep("10.0.0.5"), "node-a"), onNode(ep("10.0.1.5"), "node-b"), ep("10.0.2.5")),
		},
		want: join(pickLines(3, true), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 1 : 10.0.1.5 . 8080 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 2 : 10.0.2.5 . 8080 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element hairpin { 10.0.2.5 . 10.0.2.5 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-3 }",
		}),
	}, {
		name: "invalid input skipped",
		services: []*corev1.Service{svc("ns", "web", "10.96.0.10",
			sport("http", tcp, 80), sport("zero", tcp, 0), sport("icmp", "ICMP", 7), sport("dup", tcp, 80))},
		slices: []*discoveryv1.EndpointSlice{
			eslice("ns", "web-1", "web", []discoveryv1.EndpointPort{eport("http", tcp, 8080), {Name: strPtr("noport")}},
				ep("10.0.0.5"), ep("fd00::5"), ep("not-an-ip"), discoveryv1.Endpoint{}),
			{ObjectMeta: eslice("ns", "nolabel", "", nil).ObjectMeta, AddressType: discoveryv1.AddressTypeIPv4,
				Ports: httpPort, Endpoints: []discoveryv1.Endpoint{ep("10.0.0.9")}},
		},
		want: join(pickLines(1, true), []string{
			"add element cluster-ips { 10.96.0.10 }",
			"add element endpoints-tcp { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }",
			"add element hairpin { 10.0.0.5 . 10.0.0.5 }",
			"add element service-ips { 10.96.0.10 . tcp . 80 : goto pick-1 }",
		}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{NodeName: "node-a", ClusterCIDR: cidr}
			if tc.noCIDR {
				cfg.ClusterCIDR = netip.Prefix{}
			}
			empty := newFakeProxy(t, cfg)
			empty.sync(t)
			p := newFakeProxy(t, cfg)
			for _, s := range tc.services {
				p.UpdateService(s)
			}
			for _, s := range tc.slices {
				p.UpdateEndpointSlice(s)
			}
			p.sync(t)
			if diff := cmp.Diff(tc.want, minus(p.dump(), empty.dump())); diff != "" {
				t.Errorf("rules beyond the skeleton (-want +got):\n%s", diff)
			}
		})
	}
}

func strPtr(s string) *string { return &s }

// pickLines returns the lines of chain pick-<n>, with masquerade marking
// for the cluster CIDR 10.0.0.0/16 or without.
func pickLines(n int, masq bool) []string {
	rule := ""
	if masq {
		rule = "ip saddr != 10.0.0.0/16 jump mark-for-masquerade"
	}
	return chainLines(fmt.Sprintf("pick-%d", n), n, rule, "ip daddr . ", "endpoints-")
}

// chainLines returns the lines of a pick chain c of n endpoints: its
// masquerade rule if any, then a DNAT for each protocol keyed by
// "<key><proto> dport . numgen" in the map <maps><proto>.
func chainLines(c string, n int, masq, key, maps string) []string {
	lines := []string{"add chain " + c}
	if masq != "" {
		lines = append(lines, "add rule "+c+" "+masq)
	}
	for _, proto := range []string{"tcp", "udp", "sctp"} {
		lines = append(lines, fmt.Sprintf("add rule %s meta l4proto %s dnat to %s%s dport . numgen random mod %d map @%s%s", c, proto, key, proto, n, maps, proto))
	}
	return lines
}

func join(parts ...[]string) []string { return slices.Concat(parts...) }

// TestWarnOnce: invalid input is logged once however often it comes.
func TestWarnOnce(t *testing.T) {
	var buf bytes.Buffer
	p := newFakeProxy(t, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for range 3 {
		p.UpdateService(svc("ns", "web", "10.96.0.10", sport("zero", tcp, 0)))
		p.UpdateEndpointSlice(eslice("ns", "web-1", "web", httpPort, ep("fd00::1")))
	}
	p.sync(t)
	if n := strings.Count(buf.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want 2:\n%s", n, &buf)
	}
	p.DeleteService("ns", "web")
	p.UpdateService(svc("ns", "web", "10.96.0.10", sport("zero", tcp, 0)))
	if n := strings.Count(buf.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings after the service came back, want 3:\n%s", n, &buf)
	}
}

// TestNames: names are distinct per service port and endpoint and fit.
func TestNames(t *testing.T) {
	a := objName("service-", "ns/a/tcp/http", "ns/a/tcp/http")
	b := objName("service-", "ns/b/tcp/http", "ns/b/tcp/http")
	if a == b || !strings.HasPrefix(a, "service-") || !strings.HasSuffix(a, "-ns/a/tcp/http") {
		t.Errorf("names %q, %q", a, b)
	}
	long := strings.Repeat("x", 63) + "/" + strings.Repeat("y", 63) + "/sctp/" + strings.Repeat("z", 15) + "__255.255.255.255/65535"
	l1 := objName("affinity-", long, long+"/1")
	l2 := objName("affinity-", long, long+"/2")
	if len(l1) > maxName || l1 == l2 {
		t.Errorf("long names %q (%d), %q", l1, len(l1), l2)
	}
}

// TestNodePortRules: what node ports put in the table, on a node with
// the address 10.123.0.3 (the lines that name node ports only).
func TestNodePortRules(t *testing.T) {
	nodePort := func(s *corev1.Service, n int32) *corev1.Service {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = n
		return s
	}
	local := func(s *corev1.Service) *corev1.Service {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		return s
	}
	web := func() *corev1.Service { return svc("ns", "web", "10.96.0.10", sport("http", tcp, 80)) }
	here, there := onNode(ep("10.0.0.5"), "node-a"), onNode(ep("10.0.1.6"), "node-b")
	slice := func(eps ...discoveryv1.Endpoint) []*discoveryv1.EndpointSlice {
		return []*discoveryv1.EndpointSlice{eslice("ns", "web-1", "web", httpPort, eps...)}
	}
	nodePortPick := func(c string, n int, masq string) []string {
		return chainLines(c, n, masq, "", "nodeport-endpoints-")
	}
	for _, tc := range []struct {
		name    string
		service *corev1.Service
		slices  []*discoveryv1.EndpointSlice
		want    []string
	}{{
		name:    "cluster policy: every endpoint, masqueraded",
		service: nodePort(web(), 30080),
		slices:  slice(here, there),
		want: join(nodePortPick("nodeport-pick-2", 2, "jump mark-for-masquerade"), []string{
			"add element nodeport-endpoints-tcp { 30080 . 0 : 10.0.0.5 . 8080 }",
			"add element nodeport-endpoints-tcp { 30080 . 1 : 10.0.1.6 . 8080 }",
			"add element service-nodeports { tcp . 30080 : goto nodeport-pick-2 }",
		}),
	}, {
		name:    "local policy: this node's endpoints, the client's address kept",
		service: local(nodePort(web(), 30080)),
		slices:  slice(here, there),
		want: join(nodePortPick("nodeport-local-1", 1, ""), []string{
			"add element nodeport-endpoints-tcp { 30080 . 0 : 10.0.0.5 . 8080 }",
			"add element service-nodeports { tcp . 30080 : goto nodeport-local-1 }",
		}),
	}, {
		name:    "local policy, endpoints on other nodes only: dropped",
		service: local(nodePort(web(), 30080)),
		slices:  slice(there),
		want:    []string{"add element no-endpoint-nodeports { tcp . 30080 : drop }"},
	}, {
		name:    "no endpoint: refused",
		service: nodePort(web(), 30080),
		want:    []string{"add element no-endpoint-nodeports { tcp . 30080 : goto reject-chain }"},
	}, {
		name: "a node port on a ClusterIP service: ignored",
		service: func() *corev1.Service {
			s := nodePort(web(), 30080)
			s.Spec.Type = corev1.ServiceTypeClusterIP
			return s
		}(),
		slices: slice(here),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ClusterCIDR: cidr, NodeName: "node-a", NodeIPs: []netip.Addr{netip.MustParseAddr("10.123.0.3")}}
			p := newFakeProxy(t, cfg)
			p.UpdateService(tc.service)
			for _, es := range tc.slices {
				p.UpdateEndpointSlice(es)
			}
			p.sync(t)
			var got []string
			for _, l := range p.dump() {
				if strings.Contains(l, "nodeport") && !strings.HasPrefix(l, "add map ") && !strings.HasPrefix(l, "add rule services ") && !strings.HasPrefix(l, "add rule endpoints-check ") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("node port lines (-want +got):\n%s", diff)
			}
			dump := strings.Join(p.dump(), "\n")
			for _, rule := range []string{
				"add rule services ip daddr 10.123.0.3 meta l4proto . th dport vmap @service-nodeports",
				"add rule endpoints-check ip daddr 10.123.0.3 meta l4proto . th dport vmap @no-endpoint-nodeports",
			} {
				if !strings.Contains(dump, rule) {
					t.Errorf("no %q in\n%s", rule, dump)
				}
			}
		})
	}
}
