package providertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"wharf.dev/wharf/internal/provider"
)

// reach: hosts of a cluster reach each other and the service address.
func (s *suite) reach(t *testing.T, ctx context.Context) {
	if s.opts.NoProcesses {
		t.Skip("the provider runs no processes")
	}
	p := s.newProvider(t)
	c := newCluster(t)
	a := s.create(t, ctx, p, s.spec(c, c.Name+"-master-0"))
	b := s.create(t, ctx, p, s.spec(c, c.Name+"-node-0"))
	if a.Address == b.Address {
		t.Fatalf("two hosts have address %s", a.Address)
	}
	s.report(t, ctx, a)
	s.report(t, ctx, b)
	for _, pair := range [][2]provider.Host{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		body, err := s.get(ctx, s.url(from, "/get?url="+url.QueryEscape(s.url(to, "/report"))))
		if err != nil {
			t.Errorf("%s cannot reach %s at %s: %v", from.Name, to.Name, to.Address, err)
			continue
		}
		var rep Report
		if err := json.Unmarshal(body, &rep); err != nil || rep.Name != to.Name {
			t.Errorf("%s reached %s at %s, and got %q", from.Name, to.Name, to.Address, body)
		}
	}

	// A server on the service address, as the service's registry is.
	svcURL := s.serve(t, p.ServiceAddress(), s.opts.ServicePort)
	for _, h := range []provider.Host{a, b} {
		body, err := s.get(ctx, s.url(h, "/get?url="+url.QueryEscape(svcURL)))
		if err != nil || !strings.HasPrefix(string(body), "service") {
			t.Errorf("%s cannot reach the service at %s: %v %s", h.Name, svcURL, err, body)
			continue
		}
		t.Logf("%s reached the service: %s", h.Name, body)
	}
	if s.opts.ServicePort == 0 {
		return
	}
	// Any other port of the machine is out of the hosts' reach.
	other := s.serve(t, p.ServiceAddress(), 0)
	for _, h := range []provider.Host{a, b} {
		if body, err := s.get(ctx, s.url(h, "/get?url="+url.QueryEscape(other))); err == nil {
			t.Errorf("%s reached %s, another port than the service's %d: %s", h.Name, other, s.opts.ServicePort, body)
		}
	}
}

// serve answers "service, you are <address>" on addr:port (0: a free
// port) until the test ends, and returns its URL.
func (s *suite) serve(t *testing.T, addr string, port int) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the service address: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "service, you are %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// restart: a new provider over the same state finds and manages the hosts.
func (s *suite) restart(t *testing.T, ctx context.Context) {
	p1 := s.newProvider(t)
	c := newCluster(t)
	specs := []provider.HostSpec{s.spec(c, c.Name+"-master-0"), s.spec(c, c.Name+"-node-0")}
	var hosts []provider.Host
	var reports []Report
	for _, spec := range specs {
		h := s.create(t, ctx, p1, spec)
		hosts = append(hosts, h)
		if !s.opts.NoProcesses {
			reports = append(reports, s.report(t, ctx, h))
		}
	}

	p2 := s.newProvider(t)
	s.expectHosts(t, ctx, p2, c, hosts...)
	again, err := p2.CreateHost(ctx, specs[0])
	if err != nil {
		t.Fatalf("CreateHost on the new provider: %v", err)
	}
	if again != hosts[0] {
		t.Errorf("CreateHost on the new provider = %+v, want %+v", again, hosts[0])
	}
	if !s.opts.NoProcesses {
		if rep := s.report(t, ctx, hosts[0]); rep.PID != reports[0].PID || rep.Starts != 1 {
			t.Errorf("the new provider started a second process: pid %d (was %d), %d starts", rep.PID, reports[0].PID, rep.Starts)
		}
	}
	if err := p2.PowerOff(ctx, c, specs[1].Name); err != nil {
		t.Fatalf("PowerOff on the new provider: %v", err)
	}
	off := hosts[1]
	off.Running = false
	s.expectHosts(t, ctx, p1, c, hosts[0], off)
	for _, spec := range specs {
		if err := p2.DeleteHost(ctx, c, spec.Name); err != nil {
			t.Errorf("DeleteHost on the new provider: %v", err)
		}
	}
	s.expectHosts(t, ctx, p1, c)
}

// clusters: hosts of two clusters, even of the same name, are apart.
func (s *suite) clusters(t *testing.T, ctx context.Context) {
	p := s.newProvider(t)
	c1, c2 := newCluster(t), newCluster(t)
	name := "shared-node-0"
	h1 := s.create(t, ctx, p, s.spec(c1, name))
	h2 := s.create(t, ctx, p, s.spec(c2, name))
	if h1.Address == h2.Address || h1.StateDir == h2.StateDir {
		t.Errorf("hosts of two clusters share an address or state dir: %+v, %+v", h1, h2)
	}
	s.expectHosts(t, ctx, p, c1, h1)
	s.expectHosts(t, ctx, p, c2, h2)
	if s.opts.Isolated && !s.opts.NoProcesses {
		for _, pair := range [][2]provider.Host{{h1, h2}, {h2, h1}} {
			from, to := pair[0], pair[1]
			if body, err := s.get(ctx, s.url(from, "/get?url="+url.QueryEscape(s.url(to, "/report")))); err == nil {
				t.Errorf("a host of cluster %s reached one of cluster %s at %s: %s", from.Cluster.Key(), to.Cluster.Key(), to.Address, body)
			}
		}
	}
	// A cluster deleted and made again under the same name is another one.
	s.expectHosts(t, ctx, p, provider.ClusterRef{Namespace: c1.Namespace, Name: c1.Name, UID: newCluster(t).UID})

	if err := p.DeleteHost(ctx, c2, name); err != nil {
		t.Fatalf("DeleteHost: %v", err)
	}
	s.expectHosts(t, ctx, p, c2)
	s.expectHosts(t, ctx, p, c1, h1)
	if !s.opts.NoProcesses {
		if rep := s.report(t, ctx, h1); rep.Name != name || rep.Starts != 1 {
			t.Errorf("the other cluster's host after a delete: %+v", rep)
		}
	}
}

// concurrent: hosts made at once get distinct addresses.
func (s *suite) concurrent(t *testing.T, ctx context.Context) {
	p := s.newProvider(t)
	c := newCluster(t)
	const n = 4
	hosts := make([]provider.Host, n)
	var wg sync.WaitGroup
	for i := range n {
		spec := s.spec(c, fmt.Sprintf("%s-node-%d", c.Name, i))
		t.Cleanup(func() { p.DeleteHost(context.Background(), c, spec.Name) })
		wg.Go(func() {
			h, err := p.CreateHost(ctx, spec)
			if err != nil {
				t.Errorf("CreateHost %s: %v", spec.Name, err)
			}
			hosts[i] = h
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]string{}
	for _, h := range hosts {
		if other, ok := seen[h.Address]; ok {
			t.Errorf("hosts %s and %s both have address %s", other, h.Name, h.Address)
		}
		seen[h.Address] = h.Name
	}
	s.expectHosts(t, ctx, p, c, hosts...)
	for _, h := range hosts {
		wg.Go(func() {
			if err := p.DeleteHost(ctx, c, h.Name); err != nil {
				t.Errorf("DeleteHost %s: %v", h.Name, err)
			}
		})
	}
	wg.Wait()
	s.expectHosts(t, ctx, p, c)
}
