package proxy

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"sigs.k8s.io/knftables"

	"wharf.dev/wharf/internal/network/nsrun"
)

// TestTraffic programs a real table in a test node and sends real
// connections through it (root only).
func TestTraffic(t *testing.T) {
	n := newTestNode(t)
	a, _, c := n.addPod("a", "10.98.0.2"), n.addPod("b", "10.98.0.3"), n.addPod("c", "10.98.0.4")
	const table = "wharf-svc-test"
	cfg := Config{Table: table, NodeName: "node-a", ClusterCIDR: netip.MustParsePrefix(podCIDR), Logger: testLogger(t)}
	p := n.proxy(cfg)
	nft := n.nft(table)
	dnsPorts := []discoveryv1.EndpointPort{eport("dns", udp, 5353)}
	in := newInformer()
	in.service(p, svc("ns", "web", "10.96.0.10", sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "web-1", "web", httpPort, ep("10.98.0.2"), ep("10.98.0.3")))
	in.service(p, svc("ns", "self", "10.96.0.20", sport("http", tcp, 80)))
	in.slice(p, eslice("ns", "self-1", "self", httpPort, ep("10.98.0.2")))
	in.service(p, svc("ns", "dns", "10.96.0.11", sport("dns", udp, 53)))
	in.slice(p, eslice("ns", "dns-1", "dns", dnsPorts, ep("10.98.0.2"), ep("10.98.0.3")))
	in.service(p, svc("ns", "down", "10.96.0.12", sport("http", tcp, 80), sport("dns", udp, 53)))
	in.slice(p, eslice("ns", "down-1", "down", append(httpPort, dnsPorts...), notReady(ep("10.98.0.2")), terminating(ep("10.98.0.3"))))
	in.service(p, withAffinity(svc("ns", "sticky", "10.96.0.13", sport("http", tcp, 80)), 0))
	in.slice(p, eslice("ns", "sticky-1", "sticky", httpPort, ep("10.98.0.2"), ep("10.98.0.3")))
	n.sync(p)

	// spread dials count times and returns how many answers came from each
	// pod; every answer must show the client address want.
	spread := func(t *testing.T, from, network, addr string, count int, want string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range count {
			answer, err := dial(from, network, addr)
			name, client, _ := strings.Cut(answer, " ")
			if err != nil || client != want {
				t.Fatalf("%s %s: %q, %v (want client %s)", network, addr, answer, err, want)
			}
			got[name]++
		}
		return got
	}
	refused := func(t *testing.T, from, network, addr string) {
		t.Helper()
		start := time.Now()
		answer, err := dial(from, network, addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s %s: %q, %v; want connection refused", network, addr, answer, err)
		} else if d := time.Since(start); d > time.Second {
			t.Errorf("%s %s refused after %v", network, addr, d)
		}
	}

	t.Run("pod to service reaches every endpoint, source kept", func(t *testing.T) {
		if got := spread(t, c.ns, "tcp", "10.96.0.10:80", 50, c.ip.String()); got["a"] == 0 || got["b"] == 0 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("UDP", func(t *testing.T) {
		if got := spread(t, c.ns, "udp", "10.96.0.11:53", 30, c.ip.String()); got["a"] == 0 || got["b"] == 0 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("hairpin: a pod reaches itself, masqueraded", func(t *testing.T) {
		if got := spread(t, a.ns, "tcp", "10.96.0.20:80", 3, gateway); got["a"] != 3 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("node to service", func(t *testing.T) {
		if got := spread(t, n.ns, "tcp", "10.96.0.10:80", 20, gateway); got["a"]+got["b"] != 20 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("no usable endpoint: refused at once", func(t *testing.T) {
		refused(t, c.ns, "tcp", "10.96.0.12:80")
		refused(t, n.ns, "tcp", "10.96.0.12:80")
		refused(t, c.ns, "udp", "10.96.0.12:53")
	})
	t.Run("port the service does not have: refused", func(t *testing.T) {
		refused(t, c.ns, "tcp", "10.96.0.10:81")
		refused(t, n.ns, "tcp", "10.96.0.10:81")
	})
	t.Run("session affinity", func(t *testing.T) {
		if got := spread(t, c.ns, "tcp", "10.96.0.13:80", 20, c.ip.String()); len(got) != 1 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("endpoint change", func(t *testing.T) {
		in.slice(p, eslice("ns", "web-1", "web", httpPort, ep("10.98.0.3")))
		n.sync(p)
		if got := spread(t, c.ns, "tcp", "10.96.0.10:80", 20, c.ip.String()); got["b"] != 20 {
			t.Errorf("answers by pod: %v", got)
		}
	})
	t.Run("slice deleted: refused", func(t *testing.T) {
		in.deleteSlice(p, "ns", "web-1")
		n.sync(p)
		refused(t, c.ns, "tcp", "10.96.0.10:80")
	})
	t.Run("restart: leftovers deleted without a gap", func(t *testing.T) {
		in.slice(p, eslice("ns", "web-1", "web", httpPort, ep("10.98.0.2"), ep("10.98.0.3")))
		n.sync(p)
		in.deleteService(p, "ns", "self")
		in.deleteSlice(p, "ns", "self-1")

		var dials, failures atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := dial(c.ns, "tcp", "10.96.0.10:80"); err != nil {
					t.Errorf("dial during the restart: %v", err)
					failures.Add(1)
				}
				dials.Add(1)
			}
		})
		for dials.Load() < 5 {
			time.Sleep(time.Millisecond)
		}
		restarted := n.proxy(cfg)
		in.replay(restarted)
		n.sync(restarted)
		for d := dials.Load(); dials.Load() < d+5; {
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Logf("%d dials during the restart, %d failed", dials.Load(), failures.Load())

		var chains, maps []string
		if err := nsrun.At(n.ns, func() (err error) {
			if chains, err = nft.List(context.Background(), "chains"); err != nil {
				return err
			}
			maps, err = nft.List(context.Background(), "maps")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, ch := range chains {
			if strings.Contains(ch, "ns/self/") {
				t.Errorf("chain %s left after the restart", ch)
			}
		}
		// The restart filled the other generation and deleted the first.
		if !slices.Contains(maps, "service-ips-b") || slices.Contains(maps, "service-ips-a") {
			t.Errorf("maps after the restart: %v", maps)
		}
		if got := spread(t, c.ns, "tcp", "10.96.0.13:80", 5, c.ip.String()); len(got) != 1 {
			t.Errorf("affinity after the restart: %v", got)
		}
		p = restarted
	})
	t.Run("affinity timeout changed, then service deleted", func(t *testing.T) {
		// New sets replace the old ones in the transaction that stops
		// using them; the kernel refuses to delete a set still in use.
		in.service(p, withAffinity(svc("ns", "sticky", "10.96.0.13", sport("http", tcp, 80)), 30))
		n.sync(p)
		if got := spread(t, c.ns, "tcp", "10.96.0.13:80", 5, c.ip.String()); len(got) != 1 {
			t.Errorf("answers by pod: %v", got)
		}
		in.deleteService(p, "ns", "sticky")
		n.sync(p)
		var sets []string
		if err := nsrun.At(n.ns, func() (err error) {
			sets, err = nft.List(context.Background(), "sets")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, s := range sets {
			if strings.HasPrefix(s, "affinity-") {
				t.Errorf("set %s left", s)
			}
		}
	})
	t.Run("remove", func(t *testing.T) {
		var chains []string
		if err := nsrun.At(n.ns, func() (err error) {
			if err := Remove(context.Background(), nft); err != nil {
				return err
			}
			chains, err = nft.List(context.Background(), "chains")
			return err
		}); err != nil && !knftables.IsNotFound(err) {
			t.Fatal(err)
		}
		if len(chains) > 0 {
			t.Errorf("chains after Remove: %v", chains)
		}
	})
}
