package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkSummary is the agent's cost of one /stats/summary over a node
// of 110 pods (the kubelet's default maximum) with two containers each,
// CRI's answers given: the grouping, rates and JSON encoding.
func BenchmarkSummary(b *testing.B) {
	rt := &fakeRuntime{running: map[string]bool{}}
	for p := range 110 {
		for c := range 2 {
			id := fmt.Sprintf("c-%d-%d", p, c)
			rt.running[id] = true
			rt.stats = append(rt.stats, containerStats(id, fmt.Sprintf("pod-%d", p), fmt.Sprintf("ctr-%d", c), uint64(p*c)*1e9, 1<<20))
		}
	}
	now := time.Unix(1000, 0)
	c := NewCollector("n1", rt, &fakeNode{}, WithClock(func() time.Time { return now }))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		sum, err := c.Summary(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.NewEncoder(io.Discard).Encode(sum); err != nil {
			b.Fatal(err)
		}
	}
}
