package scheduler

import (
	"errors"
	"math/rand/v2"
)

// Like Kubernetes' percentageOfNodesToScore: never fewer than this many
// feasible nodes are looked for, and with the adaptive default the share
// shrinks from 50% as the cluster grows, down to 5%.
const (
	minFeasibleNodes     = 100
	minFeasiblePercent   = 5
	adaptiveBasePercent  = 50
	adaptiveNodesPerStep = 125
)

// errAlreadyPlaced means the pod is already bound or assumed in the cache.
var errAlreadyPlaced = errors.New("pod is already bound or assumed")

// core is the scheduling algorithm over the in-memory cache, free of any API
// plumbing, so tests and benchmarks drive it directly. It is used by one
// goroutine at a time: its buffers are reused across cycles.
type core struct {
	cache      *cache
	percentage int32 // 0 means adaptive
	rnd        *rand.Rand

	next  int // where the next cycle starts in cache.list
	cands []candidate
	diag  diagnosis
}

func newCore(c *cache, percentage int32, rnd *rand.Rand) *core {
	return &core{cache: c, percentage: percentage, rnd: rnd}
}

// result describes one successful cycle, for logs.
type result struct {
	node      string
	evaluated int
	feasible  int
}

// schedule picks a node for the pod and assumes the pod there, atomically
// with respect to cache updates. It returns a *fitError when no node fits.
func (a *core) schedule(p *podInfo) (result, error) {
	c := a.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pods[p.key] != nil {
		return result{}, errAlreadyPlaced
	}
	nodes := c.list
	total := len(nodes)
	if total == 0 {
		return result{}, &fitError{}
	}
	want := feasibleNodesToFind(total, a.percentage)
	a.cands = a.cands[:0]
	a.diag.reset()

	// Start where the previous cycle stopped so that, with sampling, every
	// node gets its turn and no node is favoured by its list position.
	start := a.next % total
	i := 0
	for ; i < total && len(a.cands) < want; i++ {
		j := start + i
		if j >= total {
			j -= total
		}
		n := nodes[j]
		if fits(p, n, &a.diag) {
			a.cands = append(a.cands, scoreNode(p, n))
		}
	}
	a.next = start + i
	if len(a.cands) == 0 {
		return result{}, &fitError{numNodes: total, reasons: a.diag.reasons()}
	}
	best := a.selectHost()
	c.assumeLocked(p, best)
	return result{node: best.name, evaluated: i, feasible: len(a.cands)}, nil
}

// selectHost returns the best-scoring candidate. Ties go to the node with
// fewer pods, so identical nodes fill evenly even with pods that request
// nothing, and then uniformly at random (reservoir sampling).
func (a *core) selectHost() *nodeInfo {
	if len(a.cands) == 1 {
		return a.cands[0].node
	}
	var r scoreRange
	for i := range a.cands {
		r.include(&a.cands[i])
	}
	best, bestScore, bestPods, ties := 0, int64(-1), int64(0), 0
	for i := range a.cands {
		s, pods := r.total(&a.cands[i]), a.cands[i].node.pods
		switch {
		case s > bestScore || (s == bestScore && pods < bestPods):
			best, bestScore, bestPods, ties = i, s, pods, 1
		case s == bestScore && pods == bestPods:
			ties++
			if a.rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return a.cands[best].node
}

// feasibleNodesToFind is how many feasible nodes end the search.
func feasibleNodesToFind(total int, percentage int32) int {
	if total < minFeasibleNodes || percentage >= 100 {
		return total
	}
	pct := int(percentage)
	if pct <= 0 {
		pct = max(adaptiveBasePercent-total/adaptiveNodesPerStep, minFeasiblePercent)
	}
	return max(total*pct/100, minFeasibleNodes)
}
