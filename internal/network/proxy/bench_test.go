package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/network/nsrun"
)

const benchEndpoints = 10

// BenchmarkSync syncs a real table in a network namespace of its own
// (root only) with N services of 10 endpoints: a full sync into an empty
// table (a node's first start), a full sync over the table of a previous
// process (a restart), and the sync of one endpoint change; the proxy is
// made as the agent makes it (nft, and netlink for a full sync's elements).
//
//	go test -run '^$' -bench Sync -benchtime 3x ./internal/network/proxy/
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("full-empty/services=%d", n), func(b *testing.B) {
			env := newBenchEnv(b, n)
			for b.Loop() {
				b.StopTimer()
				env.run(b, func() error { return Remove(context.Background(), env.nft) })
				p := env.proxy(b)
				b.StartTimer()
				env.run(b, func() error { return p.Sync(context.Background()) })
			}
		})
		b.Run(fmt.Sprintf("full-restart/services=%d", n), func(b *testing.B) {
			env := newBenchEnv(b, n)
			p := env.proxy(b)
			env.run(b, func() error { return p.Sync(context.Background()) })
			for b.Loop() {
				b.StopTimer()
				p := env.proxy(b)
				b.StartTimer()
				env.run(b, func() error { return p.Sync(context.Background()) })
			}
		})
		b.Run(fmt.Sprintf("one-change/services=%d", n), func(b *testing.B) {
			env := newBenchEnv(b, n)
			p := env.proxy(b)
			env.run(b, func() error { return p.Sync(context.Background()) })
			i := 0
			for b.Loop() {
				i++
				es := env.slice(n/2, i)
				p.UpdateEndpointSlice(es)
				env.run(b, func() error { return p.Sync(context.Background()) })
			}
		})
	}
}

type benchEnv struct {
	n    int
	node *testNode
	nft  knftables.Interface
}

const benchTable = "wharf-svc-bench"

func newBenchEnv(b *testing.B, n int) *benchEnv {
	needRoot(b)
	node := &testNode{t: b, ns: critest.NewNetNS(b)} // no bridge: nothing is sent
	return &benchEnv{n: n, node: node, nft: node.nft(benchTable)}
}

func (e *benchEnv) run(b *testing.B, fn func() error) {
	if err := nsrun.At(e.node.ns, fn); err != nil {
		b.Fatal(err)
	}
}

// proxy returns a new Proxy told of every service and slice.
func (e *benchEnv) proxy(b *testing.B) *Proxy {
	p := e.node.proxy(Config{Table: benchTable, NodeName: "node-a",
		ClusterCIDR: netip.MustParsePrefix("10.64.0.0/10"), Logger: slog.New(slog.DiscardHandler)})
	for i := range e.n {
		p.UpdateService(svc(fmt.Sprintf("bench-%d", i%50), fmt.Sprintf("svc-%d", i),
			fmt.Sprintf("10.96.%d.%d", i/256, i%256), sport("http", corev1.ProtocolTCP, 80)))
		p.UpdateEndpointSlice(e.slice(i, 0))
	}
	return p
}

// slice returns service i's slice, version v: odd versions have another
// last endpoint. The proxy is node-a's.
func (e *benchEnv) slice(i, v int) *discoveryv1.EndpointSlice {
	eps := make([]discoveryv1.Endpoint, benchEndpoints)
	for j := range eps {
		k := i*benchEndpoints + j
		if j == benchEndpoints-1 && v%2 == 1 {
			k = 1<<21 + i
		}
		// As on a cluster of 10 nodes: a tenth of the endpoints are this node's.
		eps[j] = onNode(ep(fmt.Sprintf("10.%d.%d.%d", 64+k>>16, k>>8&255, k&255)), fmt.Sprintf("node-%c", 'a'+k%10))
	}
	return eslice(fmt.Sprintf("bench-%d", i%50), fmt.Sprintf("svc-%d-1", i), fmt.Sprintf("svc-%d", i), httpPort, eps...)
}
