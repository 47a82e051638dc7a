package proxy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

// informer applies changes to a Proxy, and remembers them so that a new
// Proxy can be given the same state.
type informer struct {
	services map[string]*corev1.Service
	slices   map[string]*discoveryv1.EndpointSlice
}

func newInformer() *informer {
	return &informer{services: map[string]*corev1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
}

func (in *informer) service(p *Proxy, s *corev1.Service) {
	in.services[s.Namespace+"/"+s.Name] = s
	p.UpdateService(s)
}

func (in *informer) slice(p *Proxy, s *discoveryv1.EndpointSlice) {
	in.slices[s.Namespace+"/"+s.Name] = s
	p.UpdateEndpointSlice(s)
}

func (in *informer) deleteService(p *Proxy, ns, name string) {
	delete(in.services, ns+"/"+name)
	p.DeleteService(ns, name)
}

func (in *informer) deleteSlice(p *Proxy, ns, name string) {
	delete(in.slices, ns+"/"+name)
	p.DeleteEndpointSlice(ns, name)
}

func (in *informer) replay(p *Proxy) {
	for _, s := range in.services {
		p.UpdateService(s)
	}
	for _, s := range in.slices {
		p.UpdateEndpointSlice(s)
	}
}

// TestIncrementalMatchesFull: after each change, the incremental Sync
// leaves the table exactly as a full Sync of the same state does.
func TestIncrementalMatchesFull(t *testing.T) {
	web := func(ports ...corev1.ServicePort) *corev1.Service { return svc("ns", "web", "10.96.0.10", ports...) }
	http := sport("http", tcp, 80)
	in := newInformer()
	p := newFakeProxy(t, Config{ClusterCIDR: cidr, NodeName: "node-a"})
	p.sync(t)
	_, first := p.nft.last()
	steps := 0
	for _, step := range []struct {
		name string
		do   func(in *informer, p *Proxy)
	}{
		{"add service", func(in *informer, p *Proxy) { in.service(p, web(http)) }},
		{"add slice", func(in *informer, p *Proxy) { in.slice(p, eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5"))) }},
		{"second slice", func(in *informer, p *Proxy) { in.slice(p, eslice("ns", "web-2", "web", httpPort, ep("10.0.0.6"))) }},
		{"endpoint goes unready", func(in *informer, p *Proxy) {
			in.slice(p, eslice("ns", "web-1", "web", httpPort, notReady(ep("10.0.0.5"))))
		}},
		{"other service on the same endpoint", func(in *informer, p *Proxy) {
			in.service(p, svc("ns", "api", "10.96.0.11", http))
			in.slice(p, eslice("ns", "api-1", "api", httpPort, ep("10.0.0.6"), ep("10.0.0.7")))
		}},
		{"port renumbered and added", func(in *informer, p *Proxy) { in.service(p, web(sport("http", tcp, 81), sport("dns", udp, 53))) }},
		{"affinity", func(in *informer, p *Proxy) { in.service(p, withAffinity(web(sport("http", tcp, 81)), 0)) }},
		{"affinity timeout changed", func(in *informer, p *Proxy) { in.service(p, withAffinity(web(sport("http", tcp, 81)), 30)) }},
		{"local policy", func(in *informer, p *Proxy) { in.service(p, withLocal(web(sport("http", tcp, 81)))) }},
		{"back to cluster policy", func(in *informer, p *Proxy) { in.service(p, web(sport("http", tcp, 81))) }},
		{"slice deleted", func(in *informer, p *Proxy) { in.deleteSlice(p, "ns", "web-2") }},
		{"slice back", func(in *informer, p *Proxy) { in.slice(p, eslice("ns", "web-2", "web", httpPort, ep("10.0.0.6"))) }},
		{"cluster IP taken over before the old service's deletion", func(in *informer, p *Proxy) {
			in.service(p, svc("ns", "new", "10.96.0.10", http))
			in.slice(p, eslice("ns", "new-1", "new", httpPort, ep("10.0.0.8")))
		}},
		{"old service deleted", func(in *informer, p *Proxy) { in.deleteService(p, "ns", "web") }},
		{"slice relabelled to another service", func(in *informer, p *Proxy) {
			in.slice(p, eslice("ns", "api-1", "new", httpPort, ep("10.0.0.6"), ep("10.0.0.7")))
		}},
		{"service becomes headless", func(in *informer, p *Proxy) { in.service(p, svc("ns", "api", "None", http)) }},
		{"service deleted with its slices", func(in *informer, p *Proxy) {
			in.deleteService(p, "ns", "new")
			in.deleteSlice(p, "ns", "new-1")
		}},
	} {
		step.do(in, p.Proxy)
		p.sync(t)
		steps++
		full := newFakeProxy(t, Config{ClusterCIDR: cidr, NodeName: "node-a"})
		in.replay(full.Proxy)
		full.sync(t)
		if diff := cmp.Diff(full.dump(), p.dump()); diff != "" {
			t.Fatalf("after %s (-full +incremental):\n%s", step.name, diff)
		}
	}
	if _, n := p.nft.last(); n-first != steps {
		t.Errorf("%d transactions for %d steps, want one per step", n-first, steps)
	}
}

// TestDeleteService: a deleted service's chains, sets and elements go;
// the table is the skeleton again.
func TestDeleteService(t *testing.T) {
	p := newFakeProxy(t, Config{ClusterCIDR: cidr})
	p.sync(t)
	empty := p.dump()
	p.UpdateService(withAffinity(svc("ns", "web", "10.96.0.10", sport("http", tcp, 80), sport("dns", udp, 53)), 0))
	p.UpdateEndpointSlice(eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5"), ep("10.0.0.6")))
	p.sync(t)
	if len(minus(p.dump(), empty)) == 0 {
		t.Fatal("service added nothing")
	}
	p.DeleteService("ns", "web")
	p.sync(t)
	if diff := cmp.Diff(empty, p.dump()); diff != "" {
		t.Errorf("after the deletion (-skeleton +got):\n%s", diff)
	}
}

// TestIncrementalTouchesOneService: a slice change rewrites the changed
// service's elements only, in a transaction of its own: no chain or rule.
func TestIncrementalTouchesOneService(t *testing.T) {
	p := newFakeProxy(t, Config{ClusterCIDR: cidr})
	for i := range 3 {
		name := fmt.Sprintf("svc%d", i)
		p.UpdateService(svc("ns", name, fmt.Sprintf("10.96.0.%d", 10+i), sport("http", tcp, 80)))
		p.UpdateEndpointSlice(eslice("ns", name+"-1", name, httpPort, ep(fmt.Sprintf("10.0.%d.5", i)), ep(fmt.Sprintf("10.0.%d.6", i))))
	}
	p.sync(t)
	_, before := p.nft.last()

	p.UpdateEndpointSlice(eslice("ns", "svc1-1", "svc1", httpPort, ep("10.0.1.5"), ep("10.0.1.7")))
	p.sync(t)
	tx, after := p.nft.last()
	if after != before+1 {
		t.Fatalf("%d transactions for one change", after-before)
	}
	want := []string{
		"delete element hairpin { 10.0.1.6 . 10.0.1.6 }",
		"add element hairpin { 10.0.1.7 . 10.0.1.7 }",
		"delete element endpoints-tcp { 10.96.0.11 . 80 . 1 }",
		"add element endpoints-tcp { 10.96.0.11 . 80 . 1 : 10.0.1.7 . 8080 }",
	}
	if diff := cmp.Diff(want, txLines(tx)); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}

	// Resent, unchanged objects cost no transaction.
	p.UpdateService(svc("ns", "svc0", "10.96.0.10", sport("http", tcp, 80)))
	p.UpdateEndpointSlice(eslice("ns", "svc1-1", "svc1", httpPort, ep("10.0.1.7"), ep("10.0.1.5")))
	p.sync(t)
	if _, n := p.nft.last(); n != after {
		t.Errorf("%d transactions for unchanged objects", n-after)
	}
}

func txLines(tx *knftables.Transaction) []string {
	lines := strings.Split(strings.TrimSpace(tx.String()), "\n")
	for i, l := range lines {
		lines[i] = normalize(l)
	}
	return lines
}

// TestLeftovers: the first Sync of a new Proxy deletes what a previous
// one left (services gone meanwhile, objects of an older layout, the
// previous generation of the shared sets and maps), in transactions that
// never delete or flush the table.
func TestLeftovers(t *testing.T) {
	old := newFakeProxy(t, Config{ClusterCIDR: cidr})
	for _, name := range []string{"kept", "gone"} {
		old.UpdateService(withAffinity(svc("ns", name, map[string]string{"kept": "10.96.0.10", "gone": "10.96.0.11"}[name], sport("http", tcp, 80)), 0))
		old.UpdateEndpointSlice(eslice("ns", name+"-1", name, httpPort, ep("10.0.0.5")))
	}
	old.sync(t)
	tx := old.fake.NewTransaction()
	tx.Add(&knftables.Chain{Name: "old-layout"})
	tx.Add(&knftables.Set{Name: "old-set", Type: "ipv4_addr"})
	tx.Add(&knftables.Map{Name: "old-map", Type: "ipv4_addr : verdict"})
	tx.Add(&knftables.Rule{Chain: "old-layout", Rule: "ip daddr @old-set goto reject-chain"})
	tx.Add(&knftables.Element{Map: "old-map", Key: []string{"10.1.2.3"}, Value: []string{"goto old-layout"}})
	if err := old.fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}

	p := newProxyOver(t, Config{ClusterCIDR: cidr}, old.fake)
	p.UpdateService(withAffinity(svc("ns", "kept", "10.96.0.10", sport("http", tcp, 80)), 0))
	p.UpdateEndpointSlice(eslice("ns", "kept-1", "kept", httpPort, ep("10.0.0.5")))
	p.sync(t)

	fresh := newFakeProxy(t, Config{ClusterCIDR: cidr})
	fresh.UpdateService(withAffinity(svc("ns", "kept", "10.96.0.10", sport("http", tcp, 80)), 0))
	fresh.UpdateEndpointSlice(eslice("ns", "kept-1", "kept", httpPort, ep("10.0.0.5")))
	fresh.sync(t)
	if diff := cmp.Diff(fresh.dump(), p.dump()); diff != "" {
		t.Errorf("table after a restart (-fresh +restarted):\n%s", diff)
	}
	for _, tx := range p.nft.txs {
		if strings.Contains(tx.String(), "delete table") || strings.Contains(tx.String(), "flush table") {
			t.Errorf("a transaction of the restart touches the table:\n%s", tx)
		}
	}
	// Traffic goes by the first generation until the last transaction
	// swaps every rule to the second one and deletes the first.
	var gens []string
	for _, l := range strings.Split(p.fake.Dump(), "\n") {
		if m := regexp.MustCompile(`@service-ips-([ab])`).FindStringSubmatch(l); m != nil {
			gens = append(gens, m[1])
		}
		if strings.Contains(l, "service-ips-a") {
			t.Errorf("first generation left: %s", l)
		}
	}
	if !slices.Equal(gens, []string{"b"}) {
		t.Errorf("rules use generations %v, want [b]", gens)
	}
}

// TestFailedSyncIsRetriedFull: after a failed transaction the next Sync
// rewrites everything, since the kernel kept the state before it.
func TestFailedSyncIsRetriedFull(t *testing.T) {
	p := newFakeProxy(t, Config{ClusterCIDR: cidr})
	p.UpdateService(svc("ns", "web", "10.96.0.10", sport("http", tcp, 80)))
	p.sync(t)
	p.UpdateEndpointSlice(eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5")))
	p.nft.failNext = errors.New("nft: boom")
	if err := p.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Sync: %v", err)
	}
	_, before := p.nft.last()
	p.sync(t)
	var all strings.Builder
	for _, tx := range p.nft.txs[before:] {
		all.WriteString(tx.String())
	}
	if !strings.Contains(all.String(), "add table") || !strings.Contains(all.String(), ": 10.0.0.5 . 8080") {
		t.Errorf("sync after a failure is not full:\n%s", all.String())
	}
}

// TestFullSyncFailedHalfWay: a full sync whose last transaction failed
// left both generations, the rules on the first; the next full sync
// fills the second again, never the one in use, and ends as a fresh one.
func TestFullSyncFailedHalfWay(t *testing.T) {
	web := svc("ns", "web", "10.96.0.10", sport("http", tcp, 80))
	webSlice := eslice("ns", "web-1", "web", httpPort, ep("10.0.0.5"))
	old := newFakeProxy(t, Config{ClusterCIDR: cidr})
	old.UpdateService(web)
	old.UpdateEndpointSlice(webSlice)
	old.sync(t)

	p := newProxyOver(t, Config{ClusterCIDR: cidr}, old.fake)
	p.UpdateService(web)
	p.UpdateEndpointSlice(eslice("ns", "web-1", "web", httpPort, ep("10.0.0.6")))
	p.nft.failIf = "vmap @service-ips-b"
	if err := p.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "write the rules") {
		t.Fatalf("Sync: %v", err)
	}
	dump := p.fake.Dump()
	if !strings.Contains(dump, "vmap @service-ips-a") || !strings.Contains(dump, "endpoints-tcp-b { 10.96.0.10 . 80 . 0 : 10.0.0.6 . 8080 }") ||
		!strings.Contains(dump, "endpoints-tcp-a { 10.96.0.10 . 80 . 0 : 10.0.0.5 . 8080 }") {
		t.Fatalf("after the failure, want rules and elements on a and a filled b:\n%s", dump)
	}
	p.sync(t)

	fresh := newFakeProxy(t, Config{ClusterCIDR: cidr})
	fresh.UpdateService(web)
	fresh.UpdateEndpointSlice(eslice("ns", "web-1", "web", httpPort, ep("10.0.0.6")))
	fresh.sync(t)
	if diff := cmp.Diff(fresh.dump(), p.dump()); diff != "" {
		t.Errorf("table after the retry (-fresh +retried):\n%s", diff)
	}
	if dump := p.fake.Dump(); !strings.Contains(dump, "vmap @service-ips-b") || strings.Contains(dump, "service-ips-a") {
		t.Errorf("after the retry, want everything on b:\n%s", dump)
	}
}

// TestConcurrentUpdates: informer handlers may run while Sync does (run
// with -race).
func TestConcurrentUpdates(t *testing.T) {
	p := newFakeProxy(t, Config{ClusterCIDR: cidr, Logger: nil})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				name := fmt.Sprintf("svc%d-%d", g, i%5)
				p.UpdateService(svc("ns", name, fmt.Sprintf("10.96.%d.%d", g, i%5), sport("http", tcp, 80)))
				p.UpdateEndpointSlice(eslice("ns", name, name, httpPort, ep(fmt.Sprintf("10.0.%d.%d", g, i))))
				if i%7 == 0 {
					p.DeleteService("ns", name)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := p.Sync(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	p.sync(t)
}

func TestRemove(t *testing.T) {
	p := newFakeProxy(t, Config{})
	p.sync(t)
	for i := range 2 {
		if err := Remove(context.Background(), p.fake); err != nil {
			t.Fatalf("Remove %d: %v", i, err)
		}
	}
	if d := p.fake.Dump(); d != "" {
		t.Errorf("table left:\n%s", d)
	}
}
