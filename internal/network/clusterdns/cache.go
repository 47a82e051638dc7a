package clusterdns

import (
	"sync"
	"time"
)

// cache holds upstream answers until they expire. Lookups take a read
// lock only; when full, an insert evicts expired entries or, failing that,
// an arbitrary one (map order is random), as CoreDNS's cache does.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[cacheKey]*template
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[cacheKey]*template, min(max, 1024))}
}

func (c *cache) get(k cacheKey, now time.Time) *template {
	c.mu.RLock()
	t := c.m[k]
	c.mu.RUnlock()
	if t == nil || !now.Before(t.expires) {
		return nil
	}
	return t
}

func (c *cache) put(k cacheKey, t *template) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		var victim cacheKey
		seen, evicted := 0, false
		for key, old := range c.m {
			if seen == 0 {
				victim = key
			}
			if !t.stored.Before(old.expires) {
				delete(c.m, key)
				evicted = true
			}
			if seen++; seen == 16 {
				break
			}
		}
		if !evicted {
			delete(c.m, victim)
		}
	}
	c.m[k] = t
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
