package servicelb

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// decision is what one service should have.
type decision struct {
	// svc is the service as the cache has it; nil if it is gone.
	svc *v1.Service
	// addr is the address it gets; the zero Addr: none.
	addr netip.Addr
	// fresh: addr is not the one its status shows.
	fresh bool
	// written: addr was written already, the cache does not show it yet.
	written bool
	// leave: its status stays as it is (no pool).
	leave bool
	// failure says why it gets no address.
	failure string
	// freed: a reservation was dropped that its service may never have
	// received: services waiting for an address may get it.
	freed bool
}

// decide chooses the address of the service named key on the current view
// of the cache, under the lock: the view and the reservations together are
// every address that is (or is about to be) in some service's status.
func (c *Controller) decide(key string) (decision, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Listed under the lock, so that each decision sees a cache at least
	// as new as the one the previous decision dropped reservations on.
	all, err := c.services.List(labels.Everything())
	if err != nil {
		return decision{}, fmt.Errorf("list services: %w", err)
	}
	var d decision
	byKey := make(map[string]*v1.Service, len(all))
	for _, s := range all {
		byKey[keyOf(s)] = s
	}
	for k, r := range c.pending {
		s := byKey[k]
		switch {
		case s != nil && c.claim(s) == r.addr:
			delete(c.pending, k)
		case s == nil || s.ResourceVersion != r.resourceVersion:
			delete(c.pending, k)
			d.freed = true
		}
	}
	svc := byKey[key]
	if svc == nil {
		delete(c.reported, key)
		return d, nil
	}
	d.svc = svc
	if !ours(svc) {
		if _, ok := c.pending[key]; ok {
			delete(c.pending, key)
			d.freed = true
		}
		delete(c.reported, key)
		return d, nil
	}
	pool := c.pool()
	if len(pool) == 0 {
		d.leave = true
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			d.failure = "this cluster has no load balancer pool (wharf server --lb-cidr)"
		}
		return d, nil
	}

	held := c.held(all)
	cur := c.claim(svc)
	req, err := requested(svc)
	switch {
	case err != nil:
		d.failure = err.Error()
	case req.IsValid():
		if !pool.contains(req) {
			d.failure = fmt.Sprintf("%s is not in the load balancer pool %s", req, pool)
		} else if h, ok := held[req]; ok && h != key {
			d.failure = fmt.Sprintf("%s is held by service %s", req, h)
		} else {
			d.addr = req
		}
	default:
		if r, ok := c.pending[key]; ok && held[r.addr] == key {
			d.addr = r.addr
		} else if cur.IsValid() && held[cur] == key {
			d.addr = cur
		} else if a, ok := pool.lowestFree(held); ok {
			d.addr = a
		} else {
			n := pool.size()
			d.failure = fmt.Sprintf("no free address in the load balancer pool %s (%d %s, all held)", pool, n, plural(n, "address", "addresses"))
		}
	}

	if !d.addr.IsValid() || d.addr == cur {
		if r, ok := c.pending[key]; ok && r.addr != d.addr {
			d.freed = true
		}
		delete(c.pending, key)
		return d, nil
	}
	d.fresh = true
	if r, ok := c.pending[key]; ok && r.addr == d.addr {
		d.written = r.written
		return d, nil
	}
	if _, ok := c.pending[key]; ok {
		d.freed = true
	}
	c.pending[key] = reservation{addr: d.addr, resourceVersion: svc.ResourceVersion}
	return d, nil
}

// held maps each address in use to the key of the service holding it: the
// addresses services' statuses show, the older service's where two show
// one, and the reserved ones. Callers hold c.mu.
func (c *Controller) held(all []*v1.Service) map[netip.Addr]string {
	winner := map[netip.Addr]*v1.Service{}
	for _, s := range all {
		a := c.claim(s)
		if !a.IsValid() {
			continue
		}
		if w, ok := winner[a]; !ok || before(s, w) {
			winner[a] = s
		}
	}
	held := make(map[netip.Addr]string, len(winner)+len(c.pending))
	for a, s := range winner {
		held[a] = keyOf(s)
	}
	for a := range c.reserved {
		held[a] = "(reserved)"
	}
	for k, r := range c.pending {
		if _, ok := held[r.addr]; !ok {
			held[r.addr] = k
		}
	}
	return held
}

// before reports whether a keeps an address both a and b show over b: ours
// over another implementation's (which is about to lose it), then the
// older, then by namespace and name.
func before(a, b *v1.Service) bool {
	if oa, ob := ours(a), ours(b); oa != ob {
		return oa
	}
	if ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time; !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return keyOf(a) < keyOf(b)
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
