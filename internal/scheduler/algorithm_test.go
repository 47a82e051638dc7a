package scheduler

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		total      int
		percentage int32
		want       int
	}{
		{total: 10, want: 10},
		{total: 99, percentage: 1, want: 99},
		{total: 100, want: 100},
		{total: 500, want: 500 * 46 / 100},
		{total: 1000, want: 420},
		{total: 5000, want: 500},  // adaptive: 50 - 40 = 10%
		{total: 10000, want: 500}, // adaptive floor: 5%
		{total: 1000, percentage: 5, want: 100},
		{total: 1000, percentage: 30, want: 300},
		{total: 1000, percentage: 100, want: 1000},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d nodes at %d%%", tc.total, tc.percentage), func(t *testing.T) {
			if got := feasibleNodesToFind(tc.total, tc.percentage); got != tc.want {
				t.Errorf("feasibleNodesToFind = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSamplingRoundRobin checks that with many nodes a cycle stops after
// enough feasible nodes and the next cycle starts where it stopped.
func TestSamplingRoundRobin(t *testing.T) {
	c := newCache()
	for i := range 250 {
		var opts []nodeOpt
		if i%5 == 0 {
			opts = append(opts, withReady(corev1.ConditionFalse))
		}
		c.setNode(makeNode(fmt.Sprintf("n%03d", i), "100", "100Gi", 1000, opts...))
	}
	a := newCore(c, 10, testRand(1))
	var got []result
	for i := range 4 {
		r, err := a.schedule(newPodInfo(makePod(fmt.Sprintf("p%d", i))))
		if err != nil {
			t.Fatal(err)
		}
		r.node = "" // chosen by score, not under test here
		got = append(got, r)
	}
	// 100 feasible nodes wanted; one node in five is not ready, so each
	// cycle looks at 125 nodes, and two cycles cover the whole ring.
	want := []result{{evaluated: 125, feasible: 100}, {evaluated: 125, feasible: 100},
		{evaluated: 125, feasible: 100}, {evaluated: 125, feasible: 100}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("cycles (-want +got):\n%s", diff)
	}
	if a.next%250 != 0 {
		t.Errorf("next start = %d, want a multiple of 250 after covering the ring twice", a.next)
	}
}

// TestIdenticalNodesFillEvenly checks tie-breaking: pods of different owners
// on identical nodes end up evenly spread, even when they request nothing
// and so tie on every score.
func TestIdenticalNodesFillEvenly(t *testing.T) {
	pods := map[string]podOpt{
		"default requests": withContainer(),
		"zero requests":    withContainer("cpu", "0", "memory", "0"),
	}
	for name, container := range pods {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprint(name, " seed ", seed), func(t *testing.T) {
				c := newCache()
				for i := range 5 {
					c.setNode(makeNode(fmt.Sprintf("n%d", i), "4", "8Gi", 110))
				}
				a := newCore(c, 0, testRand(seed))
				counts := map[string]int{}
				for i := range 50 {
					r, err := a.schedule(newPodInfo(makePod(fmt.Sprintf("p%d", i), container, withOwner(fmt.Sprintf("o%d", i)))))
					if err != nil {
						t.Fatal(err)
					}
					counts[r.node]++
				}
				want := map[string]int{"n0": 10, "n1": 10, "n2": 10, "n3": 10, "n4": 10}
				if diff := cmp.Diff(want, counts); diff != "" {
					t.Errorf("pods per node (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestScheduleSkipsPlacedPods(t *testing.T) {
	c := newCache()
	c.setNode(makeNode("n1", "4", "8Gi", 110))
	a := newCore(c, 0, testRand(1))
	p := newPodInfo(makePod("p"))
	if _, err := a.schedule(p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.schedule(p); err != errAlreadyPlaced {
		t.Errorf("second schedule: err = %v, want %v", err, errAlreadyPlaced)
	}
}
