package scheduler

const maxScore = 100

// Weights follow Kubernetes' defaults for the matching plugins: taints count
// most so PreferNoSchedule is honoured whenever an untainted node is left.
const (
	weightLeastAllocated = 1
	weightSpread         = 2
	weightNodeAffinity   = 2
	weightTaints         = 3
)

// candidate is a feasible node with its raw scores. Spread, affinity and
// taint scores are normalised against the other candidates, so the raw values
// are kept until all feasible nodes are known.
type candidate struct {
	node           *nodeInfo
	leastAllocated int64 // already 0–100
	owners         int64 // pods of the same owner on the node
	affinity       int64 // summed weights of matching preferred terms
	softTaints     int64 // untolerated PreferNoSchedule taints
}

func scoreNode(p *podInfo, n *nodeInfo) candidate {
	c := candidate{node: n, leastAllocated: leastAllocated(p, n)}
	if p.owner != "" && n.owners != nil {
		c.owners = int64(n.owners[p.owner])
	}
	if len(p.preferred) > 0 {
		c.affinity = preferredAffinity(p, n)
	}
	if len(n.softTaints) > 0 {
		c.softTaints = untoleratedSoftTaints(p, n)
	}
	return c
}

// leastAllocated favours the node with the most cpu and memory left after
// placing the pod, using non-zero requests so best-effort pods spread too.
func leastAllocated(p *podInfo, n *nodeInfo) int64 {
	cpu := freeFraction(n.nonzero.milliCPU+p.nonzero.milliCPU, n.alloc.milliCPU)
	mem := freeFraction(n.nonzero.memory+p.nonzero.memory, n.alloc.memory)
	return (cpu + mem) / 2
}

func freeFraction(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * maxScore / capacity
}

func untoleratedSoftTaints(p *podInfo, n *nodeInfo) int64 {
	var c int64
	for i := range n.softTaints {
		if !tolerated(p.softTolerations, &n.softTaints[i]) {
			c++
		}
	}
	return c
}

// scoreRange holds the per-cycle maxima the normalisation needs.
type scoreRange struct {
	owners, affinity, softTaints int64
}

func (r *scoreRange) include(c *candidate) {
	r.owners = max(r.owners, c.owners)
	r.affinity = max(r.affinity, c.affinity)
	r.softTaints = max(r.softTaints, c.softTaints)
}

// total is the weighted sum of the normalised scores, each 0–100.
func (r *scoreRange) total(c *candidate) int64 {
	return weightLeastAllocated*c.leastAllocated +
		weightSpread*reverseNormalize(c.owners, r.owners) +
		weightNodeAffinity*normalize(c.affinity, r.affinity) +
		weightTaints*reverseNormalize(c.softTaints, r.softTaints)
}

func normalize(v, highest int64) int64 {
	if highest == 0 {
		return 0
	}
	return v * maxScore / highest
}

// reverseNormalize scores "fewer is better" counts: the lowest count gets
// the full score, and all nodes tie when none has any.
func reverseNormalize(v, highest int64) int64 {
	if highest == 0 {
		return maxScore
	}
	return (highest - v) * maxScore / highest
}
