package scheduler

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRecord is a pod that takes room on a node: bound (seen through the
// informer) or assumed (bound by us, not yet seen).
type podRecord struct {
	key   string
	uid   types.UID
	node  string
	usage podUsage

	assumed bool
	// expires is set once the bind call succeeded; until the informer confirms
	// the pod, the assumption lapses then, so a lost event cannot leak room.
	expires time.Time
}

// cache is the scheduler's view of the cluster, fed by informer events and by
// its own assumptions. One mutex guards it; the scheduling cycle holds it for
// the whole filter-score-assume step so the choice and the assumption are
// atomic with respect to informer updates.
type cache struct {
	mu    sync.Mutex
	nodes map[string]*nodeInfo // including ghosts
	list  []*nodeInfo          // live nodes, sampled round-robin
	pods  map[string]*podRecord
}

func newCache() *cache {
	return &cache{
		nodes: make(map[string]*nodeInfo),
		pods:  make(map[string]*podRecord),
	}
}

// setNode adds or updates a node and reports whether a pending pod might fit
// now where it did not before.
func (c *cache) setNode(node *corev1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[node.Name]
	if n == nil {
		n = newNodeInfo(node.Name)
		c.nodes[node.Name] = n
	}
	changed := n.setNode(node)
	if n.idx < 0 {
		n.idx = len(c.list)
		c.list = append(c.list, n)
	}
	return changed
}

func (c *cache) removeNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		return
	}
	c.unlistLocked(n)
	n.node = nil
	if n.pods == 0 {
		delete(c.nodes, name)
	}
}

// unlistLocked removes a node from the sampling list by swapping in the last
// one; the order only matters for fairness, which survives a swap.
func (c *cache) unlistLocked(n *nodeInfo) {
	if n.idx < 0 {
		return
	}
	last := len(c.list) - 1
	c.list[n.idx] = c.list[last]
	c.list[n.idx].idx = n.idx
	c.list[last] = nil
	c.list = c.list[:last]
	n.idx = -1
}

// setBoundPod records a pod the informer shows bound to a node, confirming
// our assumption when it matches.
func (c *cache) setBoundPod(pod *corev1.Pod) {
	key := podKey(pod)
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.pods[key]; r != nil {
		if r.uid == pod.UID && r.node == pod.Spec.NodeName {
			if r.assumed {
				r.assumed = false
				return
			}
			// A bound pod's requests change only on resize: most updates are
			// status, so compare before touching the node.
			u := usageOf(pod)
			if u.equal(&r.usage) {
				return
			}
			n := c.nodes[r.node]
			n.removeUsage(&r.usage)
			r.usage = u
			n.addUsage(&r.usage)
			return
		}
		c.removeLocked(r)
	}
	c.addLocked(&podRecord{key: key, uid: pod.UID, node: pod.Spec.NodeName, usage: usageOf(pod)})
}

// removePod forgets a pod, assumed or bound, and reports whether it held room.
func (c *cache) removePod(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.pods[key]
	if r == nil {
		return false
	}
	c.removeLocked(r)
	return true
}

// has reports whether the pod is bound or assumed, so a stale pending copy of
// a pod we just bound is not queued again.
func (c *cache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[key] != nil
}

func (c *cache) addLocked(r *podRecord) {
	n := c.nodes[r.node]
	if n == nil {
		n = newNodeInfo(r.node) // a ghost until the node shows up
		c.nodes[r.node] = n
	}
	n.addUsage(&r.usage)
	c.pods[r.key] = r
}

func (c *cache) removeLocked(r *podRecord) {
	delete(c.pods, r.key)
	n := c.nodes[r.node]
	n.removeUsage(&r.usage)
	if n.node == nil && n.pods == 0 {
		delete(c.nodes, r.node)
	}
}

// assumeLocked takes room on the chosen node before the bind call is made,
// so the next cycle already sees it.
func (c *cache) assumeLocked(p *podInfo, n *nodeInfo) {
	c.addLocked(&podRecord{key: p.key, uid: p.pod.UID, node: n.name, usage: p.podUsage, assumed: true})
}

// finishBinding starts the expiry clock of a successful assumption.
func (c *cache) finishBinding(key string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.pods[key]; r != nil && r.assumed {
		r.expires = expires
	}
}

// forget drops an assumption whose bind failed. A record the informer has
// meanwhile confirmed is kept: the bind did happen after all.
func (c *cache) forget(key, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.pods[key]; r != nil && r.assumed && r.node == node {
		c.removeLocked(r)
	}
}

// expire drops assumptions bound long ago but never confirmed and returns how
// many it dropped.
func (c *cache) expire(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	dropped := 0
	for _, r := range c.pods {
		if r.assumed && !r.expires.IsZero() && now.After(r.expires) {
			c.removeLocked(r)
			dropped++
		}
	}
	return dropped
}

func (c *cache) numNodes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}
