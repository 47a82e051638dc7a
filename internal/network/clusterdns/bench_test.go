package clusterdns

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// loadServices gives s n ClusterIP services svc-<i> in namespace bench.
func loadServices(s *Server, n int) {
	for i := range n {
		s.UpdateService(svc("bench", fmt.Sprintf("svc-%d", i), clusterIPs(fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)),
			ports(corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80})))
	}
}

// BenchmarkServeDNS measures the handler alone, after the dns package has
// unpacked the query; "msg" is the same answer packed from a dns.Msg.
func BenchmarkServeDNS(b *testing.B) {
	up := startUpstream(b, standardUpstream)
	s := newTestServer(b, Config{Upstreams: []string{up.addr}})
	loadServices(s, 1000)
	loadFixture(s)
	ask(b, s, "www.example.", dns.TypeA) // cached from now on
	cases := []struct {
		name  string
		qname string
		qtype uint16
		edns  bool
	}{
		{"cluster", "svc-500.bench.svc.cluster.local.", dns.TypeA, false},
		{"cluster-edns", "svc-500.bench.svc.cluster.local.", dns.TypeA, true},
		{"headless-3", "db.default.svc.cluster.local.", dns.TypeA, false},
		{"srv", "_http._tcp.svc-500.bench.svc.cluster.local.", dns.TypeSRV, false},
		{"nxdomain", "www.example.bench.svc.cluster.local.", dns.TypeA, false},
		{"external-cached", "www.example.", dns.TypeA, false},
	}
	for _, slow := range []bool{false, true} {
		for _, c := range cases {
			name := c.name
			if slow {
				name += "/msg"
			}
			b.Run(name, func(b *testing.B) {
				s.slowOnly = slow
				defer func() { s.slowOnly = false }()
				r := new(dns.Msg)
				r.SetQuestion(c.qname, c.qtype)
				if c.edns {
					r.SetEdns0(1232, false)
				}
				w := &discardWriter{}
				b.ReportAllocs()
				for b.Loop() {
					s.ServeDNS(w, r)
				}
			})
		}
	}
	b.Run("cluster/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := new(dns.Msg)
			r.SetQuestion("svc-500.bench.svc.cluster.local.", dns.TypeA)
			w := &discardWriter{}
			for pb.Next() {
				s.ServeDNS(w, r)
			}
		})
	})
}

// BenchmarkUpdateService measures publishing a change of one service among
// 1000.
func BenchmarkUpdateService(b *testing.B) {
	s := newTestServer(b, Config{})
	loadServices(s, 1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s.UpdateService(svc("bench", "svc-500", clusterIPs(fmt.Sprintf("10.97.0.%d", i%250+1)),
			ports(corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80})))
	}
}
