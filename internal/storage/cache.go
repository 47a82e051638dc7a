package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// ringSize is how many events of one resource the cache keeps for watches
// that resume from an older resourceVersion; older ones get ErrGone and relist.
const ringSize = 1024

// entry is one object as the cache holds it. Cached objects are shared and
// must never be mutated; data is the stored form, for unchanged-write detection.
type entry struct {
	obj  runtime.Object
	data []byte
	rev  int64
	memo Memo
}

// Memo keeps values derived from one cached object, such as its encoding
// in a media type, for as long as the object is current.
type Memo struct{ m sync.Map }

// Get returns the value for key, computing it once.
func (m *Memo) Get(key string, compute func() ([]byte, error)) ([]byte, error) {
	if v, ok := m.m.Load(key); ok {
		return v.([]byte), nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	m.m.Store(key, v)
	return v, nil
}

// event is one change of one object. For a deletion obj is the last state,
// with the deletion's revision as its resourceVersion.
type event struct {
	typ  watch.EventType
	key  string
	obj  runtime.Object
	prev runtime.Object
	rev  int64
	data []byte // stored form of obj; only while applying, never kept in the ring
}

// bucket holds the objects and recent events of one resource.
type bucket struct {
	items     map[string]*entry
	order     *btree.BTreeG[string] // the keys of items, for ordered listing
	ring      []event               // circular, oldest at ringStart
	ringStart int
	// since: the ring holds every event of this resource with rev > since.
	since int64
}

func newBucket(since int64) *bucket {
	return &bucket{items: map[string]*entry{}, order: btree.NewOrderedG[string](32), since: since}
}

func (b *bucket) put(key string, e *entry) {
	if _, had := b.items[key]; !had {
		b.order.ReplaceOrInsert(key)
	}
	b.items[key] = e
}

func (b *bucket) remove(key string) {
	delete(b.items, key)
	b.order.Delete(key)
}

// ascend calls f for the keys >= from that start with prefix, in order, until f returns false.
func (b *bucket) ascend(from, prefix string, f func(key string, e *entry) bool) {
	b.order.AscendGreaterOrEqual(from, func(k string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		return f(k, b.items[k])
	})
}

func (b *bucket) record(ev event) {
	if len(b.ring) < ringSize {
		b.ring = append(b.ring, ev)
		return
	}
	b.since = b.ring[b.ringStart].rev
	b.ring[b.ringStart] = ev
	b.ringStart = (b.ringStart + 1) % ringSize
}

// eventsAfter returns the recorded events with rev > rev, oldest first.
func (b *bucket) eventsAfter(rev int64) []event {
	var out []event
	n := len(b.ring)
	for i := 0; i < n; i++ {
		ev := b.ring[(b.ringStart+i)%n]
		if ev.rev > rev {
			out = append(out, ev)
		}
	}
	return out
}

// trim drops events at or below rev (after a compaction).
func (b *bucket) trim(rev int64) {
	if rev <= b.since {
		return
	}
	kept := b.eventsAfter(rev)
	b.ring, b.ringStart, b.since = kept, 0, rev
}

// cache mirrors everything under the registry prefix.
type cache struct {
	log    *slog.Logger
	client *clientv3.Client
	codec  *Codec
	prefix string

	mu        sync.RWMutex
	rev       int64         // every event up to rev is applied
	revCh     chan struct{} // closed and replaced when rev advances
	buckets   map[string]*bucket
	watchers  map[*cacheWatcher]struct{}
	compacted int64

	dispatchMu    sync.Mutex
	dispatchedRev int64 // every event up to this rev is queued to watchers
	progress      func(context.Context) error
}

// resourcePrefix returns /registry/<group>/<resource>/ for a key under it.
func resourcePrefix(key string) string {
	// key = /registry/<group>/<resource>/...: the 4th slash ends the prefix.
	n := 0
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			n++
			if n == 4 {
				return key[:i+1]
			}
		}
	}
	return key
}

// lookup returns the bucket of a key or prefix, or nil; safe under c.mu.RLock.
func (c *cache) lookup(prefix string) *bucket { return c.buckets[resourcePrefix(prefix)] }

// bucket returns the bucket of a key or prefix, making it; needs c.mu.Lock.
func (c *cache) bucket(prefix string) *bucket {
	rp := resourcePrefix(prefix)
	b, ok := c.buckets[rp]
	if !ok {
		b = newBucket(c.rev)
		c.buckets[rp] = b
	}
	return b
}

// load reads every object at one revision and returns it.
func (c *cache) load(ctx context.Context) (map[string]*bucket, int64, error) {
	buckets := map[string]*bucket{}
	var rev int64
	key, end := c.prefix, clientv3.GetPrefixRangeEnd(c.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(1000)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.client.Get(ctx, key, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("load %s: %w", c.prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			obj, err := c.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				c.log.Error("skipping undecodable object", "key", string(kv.Key), "err", err)
				continue
			}
			rp := resourcePrefix(string(kv.Key))
			b, ok := buckets[rp]
			if !ok {
				b = newBucket(rev)
				buckets[rp] = b
			}
			b.put(string(kv.Key), &entry{obj: obj, data: kv.Value, rev: kv.ModRevision})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return buckets, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// run keeps the cache current until ctx ends. ready is closed after the first load.
func (c *cache) run(ctx context.Context, ready chan<- error) {
	first := true
	for ctx.Err() == nil {
		buckets, rev, err := c.load(ctx)
		if err != nil {
			if first {
				ready <- err
				return
			}
			c.log.Warn("cache reload failed", "err", err)
			time.Sleep(time.Second)
			continue
		}
		c.reset(buckets, rev)
		if first {
			close(ready)
			first = false
		}
		err = c.follow(ctx, rev)
		if ctx.Err() == nil {
			c.log.Warn("etcd watch ended; reloading the cache", "err", err)
		}
	}
}

// reset replaces the cache's content; current watchers end and clients re-watch.
func (c *cache) reset(buckets map[string]*bucket, rev int64) {
	c.mu.Lock()
	old := c.watchers
	c.buckets, c.watchers = buckets, map[*cacheWatcher]struct{}{}
	c.advance(rev)
	c.mu.Unlock()
	c.dispatchMu.Lock()
	c.dispatchedRev = rev
	c.dispatchMu.Unlock()
	for w := range old {
		w.stop()
	}
}

// advance moves rev forward and wakes readers waiting for it. Holds c.mu.
func (c *cache) advance(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.revCh)
	c.revCh = make(chan struct{})
}

func (c *cache) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The client's own watcher: with an in-process client (v3client) a new
	// gRPC watcher has no connection to use.
	watcher := c.client.Watcher
	c.mu.Lock()
	// The client picks the watch stream by the context's metadata: a
	// progress request must carry the watch's (require-leader), or it
	// goes to a stream of its own and no notification ever comes.
	c.progress = func(ctx context.Context) error { return watcher.RequestProgress(clientv3.WithRequireLeader(ctx)) }
	c.mu.Unlock()
	ch := watcher.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.IsProgressNotify() {
			c.mu.Lock()
			c.advance(resp.Header.Revision)
			c.mu.Unlock()
			continue
		}
		c.apply(resp.Events)
	}
	return ctx.Err()
}

// apply applies one batch of etcd events and dispatches them to watchers.
func (c *cache) apply(evs []*clientv3.Event) {
	batch := make([]event, 0, len(evs))
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		if ev.Type == clientv3.EventTypePut {
			obj, err := c.codec.decode(ev.Kv.Value, ev.Kv.ModRevision)
			if err != nil {
				c.log.Error("skipping undecodable object", "key", key, "err", err)
				continue
			}
			batch = append(batch, event{typ: watch.Added, key: key, obj: obj, rev: ev.Kv.ModRevision, data: ev.Kv.Value})
			continue
		}
		batch = append(batch, event{typ: watch.Deleted, key: key, rev: ev.Kv.ModRevision})
	}
	// Take the dispatch lock before c.mu so batches reach watchers in order.
	c.dispatchMu.Lock()
	defer c.dispatchMu.Unlock()
	c.mu.Lock()
	var maxRev int64
	for i := range batch {
		ev := &batch[i]
		b := c.bucket(ev.key)
		old, had := b.items[ev.key]
		switch {
		case ev.typ == watch.Deleted && !had:
			ev.typ = "" // deletion of something never seen: nothing to tell
		case ev.typ == watch.Deleted:
			b.remove(ev.key)
			last := old.obj.DeepCopyObject()
			setRV(last, ev.rev)
			ev.obj, ev.prev = last, old.obj
		default:
			if had {
				ev.typ, ev.prev = watch.Modified, old.obj
			}
			b.put(ev.key, &entry{obj: ev.obj, data: ev.data, rev: ev.rev})
		}
		ev.data = nil
		if ev.typ != "" {
			b.record(*ev)
		}
		maxRev = max(maxRev, ev.rev)
	}
	c.advance(maxRev)
	watchers := make([]*cacheWatcher, 0, len(c.watchers))
	for w := range c.watchers {
		watchers = append(watchers, w)
	}
	c.mu.Unlock()

	deadline := time.Now().Add(dispatchBudget)
	for _, ev := range batch {
		if ev.typ == "" {
			continue
		}
		for _, w := range watchers {
			if ev.rev > w.startRev && strings.HasPrefix(ev.key, w.prefix) {
				if !w.offer(ev, deadline) {
					if !w.stopped() {
						c.log.Warn("dropping a watcher that fell behind; its client will re-watch", "prefix", w.prefix, "rev", ev.rev)
					}
					c.removeWatcher(w)
				}
			}
		}
	}
	c.dispatchedRev = max(c.dispatchedRev, maxRev)
}

func (c *cache) removeWatcher(w *cacheWatcher) {
	c.mu.Lock()
	delete(c.watchers, w)
	c.mu.Unlock()
	w.stop()
}

// waitFor blocks until the cache has applied revision rev.
func (c *cache) waitFor(ctx context.Context, rev int64) error {
	requested := false
	timeout := time.NewTimer(3 * time.Second)
	defer timeout.Stop()
	nudge := time.NewTimer(20 * time.Millisecond)
	defer nudge.Stop()
	for {
		c.mu.RLock()
		cur, ch, progress := c.rev, c.revCh, c.progress
		c.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-nudge.C:
			// Writes outside the watched prefix advance etcd's revision
			// without events here; ask etcd to confirm how far we are.
			if !requested && progress != nil {
				requested = true
				_ = progress(ctx)
			}
		case <-timeout.C:
			return fmt.Errorf("waiting for revision %d (cache at %d): %w", rev, cur, ErrTooLarge)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
