package clusterdns

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// loadFixture gives s one service of each kind.
func loadFixture(s *Server) {
	http := corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}
	s.UpdateService(svc("default", "web", clusterIPs("10.96.0.10"), ports(http,
		corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53},
		corev1.ServicePort{Port: 8080})))
	s.UpdateService(svc("default", "dual", clusterIPs("10.96.0.11", "fd00::11"), ports(corev1.ServicePort{Name: "https", Port: 443})))
	s.UpdateService(svc("default", "v6", clusterIPs("fd00::12")))
	s.UpdateService(svc("default", "db", headless))
	pg := epPort("postgres", corev1.ProtocolTCP, 5432)
	s.UpdateEndpointSlice(slice("default", "db-a", "db", []ep{{"10.0.0.5", "db-0", false}, {"10.0.0.6", "", false}, {"10.0.0.7", "db-2", true}}, pg))
	s.UpdateEndpointSlice(slice("default", "db-b", "db", []ep{{"10.0.0.8", "db-1", false}}, pg))
	s.UpdateService(svc("default", "db6", headless))
	s.UpdateEndpointSlice(slice("default", "db6-a", "db6", []ep{{"fd00::5", "", false}}))
	s.UpdateService(svc("default", "pnr", headless, publishNotReady))
	s.UpdateEndpointSlice(slice("default", "pnr-a", "pnr", []ep{{"10.0.1.1", "", true}}))
	s.UpdateService(svc("default", "lonely", headless))
	s.UpdateService(svc("default", "ext", externalName("Example.COM")))
	s.UpdateService(svc("default", "alias", externalName("web.default.svc.cluster.local")))
	s.UpdateService(svc("default", "dangling", externalName("gone.default.svc.cluster.local")))
	s.UpdateService(svc("other", "api", clusterIPs("10.96.1.1"), ports(http)))
	// A slice of no service and a slice before its service are kept apart.
	s.UpdateEndpointSlice(slice("default", "orphan", "", []ep{{"10.9.9.9", "", false}}))
	s.UpdateEndpointSlice(slice("other", "later-a", "later", []ep{{"10.0.2.2", "", false}}))
}

func TestRecords(t *testing.T) {
	s := newTestServer(t, Config{})
	loadFixture(s)
	const soa = "cluster.local. SOA"
	tests := []struct {
		name  string
		qtype uint16
		want  result
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}}},
		// The answer's owner points at the question, as asked (0x20 friendly).
		{"WEB.Default.Svc.Cluster.Local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"WEB.Default.Svc.Cluster.Local. 5 IN A 10.96.0.10"}}},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"web.default.svc.cluster.local.", dns.TypeTXT, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"dual.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"dual.default.svc.cluster.local. 5 IN A 10.96.0.11"}}},
		{"dual.default.svc.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"dual.default.svc.cluster.local. 5 IN AAAA fd00::11"}}},
		{"v6.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			Extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}}},
		{"_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."},
			Extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}}},
		{"_https._tcp.dual.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"_https._tcp.dual.default.svc.cluster.local. 5 IN SRV 0 100 443 dual.default.svc.cluster.local."},
			Extra:  []string{"dual.default.svc.cluster.local. 5 IN A 10.96.0.11", "dual.default.svc.cluster.local. 5 IN AAAA fd00::11"}}},
		{"web.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true,
			Answer: []string{
				"web.default.svc.cluster.local. 5 IN SRV 0 33 53 web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN SRV 0 33 80 web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN SRV 0 33 8080 web.default.svc.cluster.local.",
			},
			Extra: []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}}},
		{"_http._udp.web.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"_tcp.web.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}}},
		{"10.0.96.10.in-addr.arpa.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{"in-addr.arpa. SOA"}}},
		{"1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.default.svc.cluster.local."}}},

		// headless
		{"db.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Answer: []string{
			"db.default.svc.cluster.local. 5 IN A 10.0.0.5",
			"db.default.svc.cluster.local. 5 IN A 10.0.0.6",
			"db.default.svc.cluster.local. 5 IN A 10.0.0.8",
		}}},
		{"db-0.db.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"db-0.db.default.svc.cluster.local. 5 IN A 10.0.0.5"}}},
		{"10-0-0-6.db.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"10-0-0-6.db.default.svc.cluster.local. 5 IN A 10.0.0.6"}}},
		{"db-2.db.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"10-0-0-5.db.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"_postgres._tcp.db.default.svc.cluster.local.", dns.TypeSRV, result{Rcode: "NOERROR", AA: true,
			Answer: []string{
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 10-0-0-6.db.default.svc.cluster.local.",
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
			},
			Extra: []string{
				"10-0-0-6.db.default.svc.cluster.local. 5 IN A 10.0.0.6",
				"db-0.db.default.svc.cluster.local. 5 IN A 10.0.0.5",
				"db-1.db.default.svc.cluster.local. 5 IN A 10.0.0.8",
			}}},
		{"5.0.0.10.in-addr.arpa.", dns.TypePTR, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"5.0.0.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."}}},
		{"6.0.0.10.in-addr.arpa.", dns.TypePTR, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"6.0.0.10.in-addr.arpa. 5 IN PTR 10-0-0-6.db.default.svc.cluster.local."}}},
		{"db6.default.svc.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"db6.default.svc.cluster.local. 5 IN AAAA fd00::5"}}},
		{"fd00--5.db6.default.svc.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"fd00--5.db6.default.svc.cluster.local. 5 IN AAAA fd00::5"}}},
		{"pnr.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"pnr.default.svc.cluster.local. 5 IN A 10.0.1.1"}}},
		{"lonely.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"10-0-2-2.later.other.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},

		// ExternalName
		{"ext.default.svc.cluster.local.", dns.TypeCNAME, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}}},
		{"ext.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME example.com."}}},
		{"alias.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Answer: []string{
			"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
			"web.default.svc.cluster.local. 5 IN A 10.96.0.10",
		}}},
		{"alias.default.svc.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa},
			Answer: []string{"alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local."}}},
		{"dangling.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa},
			Answer: []string{"dangling.default.svc.cluster.local. 5 IN CNAME gone.default.svc.cluster.local."}}},

		// pods
		{"10-244-1-5.default.pod.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"}}},
		{"10-244-1-5.anyns.pod.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"fd00--7.default.pod.cluster.local.", dns.TypeAAAA, result{Rcode: "NOERROR", AA: true,
			Answer: []string{"fd00--7.default.pod.cluster.local. 5 IN AAAA fd00::7"}}},
		{"default.pod.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"300-1-1-1.default.pod.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"a.10-244-1-5.default.pod.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},

		// the zone's structure
		{"cluster.local.", dns.TypeSOA, result{Rcode: "NOERROR", AA: true, Answer: []string{
			"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5"}}},
		{"cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"default.svc.cluster.local.", dns.TypeA, result{Rcode: "NOERROR", AA: true, Ns: []string{soa}}},
		{"nowhere.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"nope.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"x.web.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"foo.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},
		{"orphan.default.svc.cluster.local.", dns.TypeA, result{Rcode: "NXDOMAIN", AA: true, Ns: []string{soa}}},

		// not ours, and no upstream to ask
		{"example.com.", dns.TypeA, result{Rcode: "REFUSED"}},
		{"3.2.1.10.in-addr.arpa.", dns.TypePTR, result{Rcode: "REFUSED"}},
		{"notcluster.local.", dns.TypeA, result{Rcode: "REFUSED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				r := new(dns.Msg)
				r.SetQuestion(tt.name, tt.qtype)
				got := normalise(resultOf(exchange(t, s, r, tcp)))
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("tcp=%v: answer (-want +got):\n%s", tcp, diff)
				}
			}
		})
	}
}

// normalise sorts the records a server may rotate and hides the SOA serial.
func normalise(r result) result {
	slices.Sort(r.Answer)
	slices.Sort(r.Extra)
	for i, a := range r.Answer {
		if f := strings.Fields(a); len(f) == 11 && f[3] == "SOA" {
			f[6] = "SERIAL"
			r.Answer[i] = strings.Join(f, " ")
		}
	}
	return r
}
