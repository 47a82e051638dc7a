package clusterdns

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// answers asks for name and qtype and returns the rcode and sorted answer.
func answers(t *testing.T, s *Server, name string, qtype uint16) string {
	t.Helper()
	r := normalise(resultOf(ask(t, s, name, qtype)))
	return fmt.Sprintf("%s %v", r.Rcode, r.Answer)
}

func TestUpdatesAreSeenAtOnce(t *testing.T) {
	s := newTestServer(t, Config{})
	const name = "web.default.svc.cluster.local."
	const ptr = "10.0.96.10.in-addr.arpa."
	steps := []struct {
		do   func()
		name string
		want string
	}{
		{func() {}, name, "NXDOMAIN []"},
		{func() { s.UpdateService(svc("default", "web", clusterIPs("10.96.0.10"))) }, name,
			"NOERROR [web.default.svc.cluster.local. 5 IN A 10.96.0.10]"},
		{func() {}, ptr, "NOERROR [10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.]"},
		{func() { s.UpdateService(svc("default", "web", clusterIPs("10.96.0.20"))) }, name,
			"NOERROR [web.default.svc.cluster.local. 5 IN A 10.96.0.20]"},
		{func() {}, ptr, "REFUSED []"}, // no longer ours
		{func() { s.UpdateService(svc("default", "web", headless)) }, name, "NOERROR []"},
		{func() { s.UpdateEndpointSlice(slice("default", "web-a", "web", []ep{{"10.0.0.1", "a", false}})) }, name,
			"NOERROR [web.default.svc.cluster.local. 5 IN A 10.0.0.1]"},
		{func() { s.UpdateEndpointSlice(slice("default", "web-b", "web", []ep{{"10.0.0.2", "", false}})) }, name,
			"NOERROR [web.default.svc.cluster.local. 5 IN A 10.0.0.1 web.default.svc.cluster.local. 5 IN A 10.0.0.2]"},
		{func() { s.UpdateEndpointSlice(slice("default", "web-a", "web", []ep{{"10.0.0.1", "a", true}})) }, name,
			"NOERROR [web.default.svc.cluster.local. 5 IN A 10.0.0.2]"},
		{func() {}, "a.web.default.svc.cluster.local.", "NXDOMAIN []"},
		{func() { s.DeleteEndpointSlice("default", "web-b") }, name, "NOERROR []"},
		{func() {}, "10-0-0-2.web.default.svc.cluster.local.", "NXDOMAIN []"},
		{func() {}, "2.0.0.10.in-addr.arpa.", "REFUSED []"},
		// a slice that moves to another service
		{func() { s.UpdateService(svc("default", "other", headless)) }, "other.default.svc.cluster.local.", "NOERROR []"},
		{func() { s.UpdateEndpointSlice(slice("default", "web-a", "other", []ep{{"10.0.0.1", "", false}})) },
			"other.default.svc.cluster.local.", "NOERROR [other.default.svc.cluster.local. 5 IN A 10.0.0.1]"},
		{func() {}, "default.svc.cluster.local.", "NOERROR []"},
		{func() { s.DeleteService("default", "web") }, name, "NXDOMAIN []"},
		{func() { s.DeleteService("default", "other") }, "other.default.svc.cluster.local.", "NXDOMAIN []"},
		{func() {}, "default.svc.cluster.local.", "NXDOMAIN []"},
		{func() {}, "1.0.0.10.in-addr.arpa.", "REFUSED []"},
		// a slice kept while its service was away counts when it is back
		{func() { s.UpdateService(svc("default", "other", headless)) }, "other.default.svc.cluster.local.",
			"NOERROR [other.default.svc.cluster.local. 5 IN A 10.0.0.1]"},
	}
	for i, st := range steps {
		st.do()
		qtype := dns.TypeA
		if strings.HasSuffix(st.name, ".arpa.") {
			qtype = dns.TypePTR
		}
		if got := answers(t, s, st.name, qtype); got != st.want {
			t.Errorf("step %d: %s: %s, want %s", i, st.name, got, st.want)
		}
	}
	s.DeleteService("default", "other")
	s.DeleteEndpointSlice("default", "web-a")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != 3 || len(s.owners) != 0 || len(s.below) != 0 || len(s.published) != 0 || len(s.slices) != 0 || len(s.svcSlices) != 0 {
		t.Errorf("state left after deleting everything: names %d, owners %v, below %v, published %v, slices %v",
			len(s.names), s.owners, s.below, s.published, s.slices)
	}
}

func TestSharedAddress(t *testing.T) {
	s := newTestServer(t, Config{})
	s.UpdateService(svc("default", "a", headless))
	s.UpdateService(svc("default", "b", headless))
	s.UpdateEndpointSlice(slice("default", "a-1", "a", []ep{{"10.0.0.1", "pod", false}}))
	s.UpdateEndpointSlice(slice("default", "b-1", "b", []ep{{"10.0.0.1", "pod", false}}))
	const ptr = "1.0.0.10.in-addr.arpa."
	want := "NOERROR [1.0.0.10.in-addr.arpa. 5 IN PTR pod.a.default.svc.cluster.local. 1.0.0.10.in-addr.arpa. 5 IN PTR pod.b.default.svc.cluster.local.]"
	if got := answers(t, s, ptr, dns.TypePTR); got != want {
		t.Errorf("PTR: %s, want %s", got, want)
	}
	s.DeleteService("default", "a")
	want = "NOERROR [1.0.0.10.in-addr.arpa. 5 IN PTR pod.b.default.svc.cluster.local.]"
	if got := answers(t, s, ptr, dns.TypePTR); got != want {
		t.Errorf("PTR after deleting a: %s, want %s", got, want)
	}
}

// TestConcurrentUpdates runs queries while services change (for -race).
func TestConcurrentUpdates(t *testing.T) {
	s := newTestServer(t, Config{})
	loadFixture(s)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, n := range []string{"web.default.svc.cluster.local.", "churn.default.svc.cluster.local.", "db.default.svc.cluster.local."} {
					w := &fakeWriter{}
					r := new(dns.Msg)
					r.SetQuestion(n, dns.TypeA)
					s.ServeDNS(w, r)
					if len(w.msgs) != 1 || len(w.errs) != 0 {
						t.Errorf("%s: answers %v, errors %v", n, w.msgs, w.errs)
						return
					}
				}
			}
		})
	}
	for i := range 500 {
		s.UpdateService(svc("default", "churn", clusterIPs(fmt.Sprintf("10.96.2.%d", i%250+1)),
			ports(corev1.ServicePort{Name: "http", Port: 80})))
		s.UpdateEndpointSlice(slice("default", "db-b", "db", []ep{{fmt.Sprintf("10.0.3.%d", i%250+1), "", false}}))
		if i%7 == 0 {
			s.DeleteService("default", "churn")
		}
	}
	close(stop)
	wg.Wait()
	s.UpdateService(svc("default", "churn", clusterIPs("10.96.9.9")))
	got := resultOf(ask(t, s, "churn.default.svc.cluster.local.", dns.TypeA))
	if diff := cmp.Diff([]string{"churn.default.svc.cluster.local. 5 IN A 10.96.9.9"}, got.Answer); diff != "" {
		t.Errorf("answer after the churn (-want +got):\n%s", diff)
	}
}
