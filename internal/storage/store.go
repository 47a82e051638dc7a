package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Prefix is where every object lives in etcd.
const Prefix = "/registry/"

// Store keeps objects in etcd and serves reads from its cache.
type Store struct {
	log    *slog.Logger
	client *clientv3.Client
	codec  *Codec
	cache  *cache
}

// New loads the cache from etcd and keeps it current until ctx ends.
func New(ctx context.Context, logger *slog.Logger, client *clientv3.Client, codec *Codec) (*Store, error) {
	c := &cache{
		log: logger, client: client, codec: codec, prefix: Prefix,
		revCh: make(chan struct{}), buckets: map[string]*bucket{}, watchers: map[*cacheWatcher]struct{}{},
	}
	ready := make(chan error, 1)
	go c.run(ctx, ready)
	select {
	case err := <-ready:
		if err != nil {
			return nil, fmt.Errorf("start storage cache: %w", err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &Store{log: logger, client: client, codec: codec, cache: c}, nil
}

// Preconditions must hold for an update or delete to happen.
type Preconditions struct {
	UID             types.UID
	ResourceVersion string
}

// Check reports ErrConflict if obj, stored at key, does not meet p (nil meets all).
func (p *Preconditions) Check(key string, obj runtime.Object) error {
	if p == nil {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if p.UID != "" && p.UID != m.GetUID() {
		return fmt.Errorf("%s: precondition failed: uid is %s, not %s: %w", key, m.GetUID(), p.UID, ErrConflict)
	}
	if p.ResourceVersion != "" && p.ResourceVersion != m.GetResourceVersion() {
		return fmt.Errorf("%s: precondition failed: resourceVersion is %s, not %s: %w", key, m.GetResourceVersion(), p.ResourceVersion, ErrConflict)
	}
	return nil
}

// Create stores a new object; ErrExists if the key is taken.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error) {
	data, err := s.codec.encode(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, keyError(ErrExists, key)
	}
	out := obj.DeepCopyObject()
	setRV(out, resp.Header.Revision)
	return out, nil
}

// Get returns the object at key. rv "" reads the latest state (from etcd,
// like Kubernetes: one key costs less than waiting for the cache); "0"
// whatever the cache holds; any other revision the cache's state once it
// has seen it.
func (s *Store) Get(ctx context.Context, key string, rv string) (runtime.Object, error) {
	if rv == "" {
		obj, _, _, err := s.read(ctx, key)
		return obj, err
	}
	if err := s.waitRV(ctx, rv); err != nil {
		return nil, err
	}
	c := s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	if b := c.lookup(key); b != nil {
		if e, ok := b.items[key]; ok {
			return e.obj, nil
		}
	}
	return nil, keyError(ErrNotFound, key)
}

// waitRV waits until the cache is as new as a read at rv requires.
func (s *Store) waitRV(ctx context.Context, rv string) error {
	switch rv {
	case "0":
		return nil
	case "":
		cur, err := s.Revision(ctx)
		if err != nil {
			return err
		}
		return s.cache.waitFor(ctx, cur)
	}
	n, err := ParseRV(rv)
	if err != nil {
		return err
	}
	return s.cache.waitFor(ctx, n)
}

// Revision returns etcd's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, Prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// UpdateFunc returns the new state of an object from its current state (a
// private copy). An error aborts the update.
type UpdateFunc func(cur runtime.Object) (runtime.Object, error)

// Update applies update to the current object, retrying on concurrent
// writes. If the result equals the current state nothing is written.
func (s *Store) Update(ctx context.Context, key string, pre *Preconditions, update UpdateFunc) (runtime.Object, error) {
	cur, data, rev, fromCache := s.cached(key)
	for {
		if cur == nil {
			var err error
			if cur, data, rev, err = s.read(ctx, key); err != nil {
				return nil, err
			}
			fromCache = false
		}
		next, err := s.tryUpdate(key, cur, pre, update)
		if err != nil {
			if fromCache {
				cur = nil // the cache may be behind: decide on etcd's state
				continue
			}
			return nil, err
		}
		nextData, err := s.codec.encode(next)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", key, err)
		}
		if bytes.Equal(nextData, data) {
			return cur, nil
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(nextData))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		if resp.Succeeded {
			setRV(next, resp.Header.Revision)
			return next, nil
		}
		if cur, data, rev, err = s.fromGet(key, resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return nil, err
		}
		fromCache = false
	}
}

func (s *Store) tryUpdate(key string, cur runtime.Object, pre *Preconditions, update UpdateFunc) (runtime.Object, error) {
	if err := pre.Check(key, cur); err != nil {
		return nil, err
	}
	return update(cur.DeepCopyObject())
}

// Delete removes the object at key if validate (optional) accepts its
// current state, and returns its last state.
func (s *Store) Delete(ctx context.Context, key string, pre *Preconditions, validate func(cur runtime.Object) error) (runtime.Object, error) {
	cur, _, rev, fromCache := s.cached(key)
	for {
		if cur == nil {
			var err error
			if cur, _, rev, err = s.read(ctx, key); err != nil {
				return nil, err
			}
			fromCache = false
		}
		err := pre.Check(key, cur)
		if err == nil && validate != nil {
			err = validate(cur)
		}
		if err != nil {
			if fromCache {
				cur = nil
				continue
			}
			return nil, err
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpDelete(key)).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
		if resp.Succeeded {
			out := cur.DeepCopyObject()
			setRV(out, resp.Header.Revision)
			return out, nil
		}
		if cur, _, rev, err = s.fromGet(key, resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return nil, err
		}
		fromCache = false
	}
}

// cached returns the cache's view of key as a first guess for a write.
func (s *Store) cached(key string) (runtime.Object, []byte, int64, bool) {
	c := s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	if b := c.lookup(key); b != nil {
		if e, ok := b.items[key]; ok && e.data != nil {
			return e.obj, e.data, e.rev, true
		}
	}
	return nil, nil, 0, false
}

func (s *Store) read(ctx context.Context, key string) (runtime.Object, []byte, int64, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return s.fromGet(key, resp.Kvs)
}

func (s *Store) fromGet(key string, kvs []*mvccpb.KeyValue) (runtime.Object, []byte, int64, error) {
	if len(kvs) == 0 {
		return nil, nil, 0, keyError(ErrNotFound, key)
	}
	obj, err := s.codec.decode(kvs[0].Value, kvs[0].ModRevision)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", key, err)
	}
	return obj, kvs[0].Value, kvs[0].ModRevision, nil
}

// Compact discards etcd history up to rev; watches and continue tokens
// older than rev then get ErrGone.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if _, err := s.client.Compact(ctx, rev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("compact to %d: %w", rev, err)
	}
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compacted = max(c.compacted, rev)
	for _, b := range c.buckets {
		b.trim(rev)
	}
	return nil
}

// WatchOptions say where a watch starts and what it sees.
type WatchOptions struct {
	// ResourceVersion: "" or "0" start with the current state as ADDED
	// events ("" waits for the latest state first); otherwise the events
	// after that revision.
	ResourceVersion string
	// SendInitialEvents starts with the state at ResourceVersion (or newer)
	// as ADDED events, then an "initial-events-end" bookmark.
	SendInitialEvents *bool
	Predicate         Predicate
	Bookmarks         bool
	// NewObject returns an empty object of the watched kind, for bookmarks.
	NewObject func() runtime.Object
}

// Watch streams changes of the objects under prefix.
func (s *Store) Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error) {
	initialState := opts.ResourceVersion == "" || opts.ResourceVersion == "0"
	if opts.SendInitialEvents != nil {
		initialState = *opts.SendInitialEvents
	}
	if initialState || opts.ResourceVersion == "" {
		if err := s.waitRV(ctx, opts.ResourceVersion); err != nil {
			return nil, err
		}
	}
	rev, err := ParseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	c := s.cache
	w := &cacheWatcher{
		prefix: prefix, pred: opts.Predicate, bookmarks: opts.Bookmarks, newObj: opts.NewObject,
		initialEnd: opts.SendInitialEvents != nil && *opts.SendInitialEvents,
		in:         make(chan event, watcherBuffer), out: make(chan watch.Event), done: make(chan struct{}),
		dispatched: func() int64 { c.dispatchMu.Lock(); defer c.dispatchMu.Unlock(); return c.dispatchedRev },
	}
	if !initialState && rev > 0 {
		if err := c.waitFor(ctx, rev); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	b := c.bucket(prefix)
	switch {
	case initialState:
		w.startRev = c.rev
		b.ascend(prefix, prefix, func(k string, e *entry) bool {
			w.initial = append(w.initial, event{typ: watch.Added, key: k, obj: e.obj, rev: e.rev})
			return true
		})
	case rev == 0:
		// No initial events and no revision: changes from now on.
		w.startRev = c.rev
	default:
		if rev < c.compacted {
			c.mu.Unlock()
			return nil, fmt.Errorf("watch %s from %d (compacted at %d): %w", prefix, rev, c.compacted, ErrGone)
		}
		if rev < b.since {
			// Older than the cache's history: etcd still has it unless compacted.
			c.mu.Unlock()
			s.log.Info("watch older than the cache's history: serving it from etcd", "prefix", prefix, "from", rev, "cacheSince", b.since)
			return s.watchEtcd(ctx, prefix, rev, opts)
		}
		w.startRev = c.rev
		for _, ev := range b.eventsAfter(rev) {
			if hasPrefix(ev.key, prefix) {
				w.initial = append(w.initial, ev)
			}
		}
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	go w.run()
	go func() {
		select {
		case <-ctx.Done():
			c.removeWatcher(w)
		case <-w.done:
			c.mu.Lock()
			delete(c.watchers, w)
			c.mu.Unlock()
		}
	}()
	return w, nil
}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }
