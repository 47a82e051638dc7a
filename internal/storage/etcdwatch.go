package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// watchEtcd serves a watch from a revision older than the cache's history
// (typically a client resuming after this server restarted) straight from
// etcd, which keeps every revision until compaction. ErrGone if compacted.
func (s *Store) watchEtcd(ctx context.Context, prefix string, rev int64, opts WatchOptions) (watch.Interface, error) {
	// A read at rev fails at once if etcd no longer has it.
	if _, err := s.client.Get(ctx, prefix, clientv3.WithRev(rev), clientv3.WithLimit(1), clientv3.WithKeysOnly()); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("watch %s from %d: %w", prefix, rev, ErrGone)
		}
		return nil, fmt.Errorf("watch %s from %d: %w", prefix, rev, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := s.client.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1),
		clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	w := &etcdWatcher{out: make(chan watch.Event), cancel: cancel}
	cw := &cacheWatcher{pred: opts.Predicate, newObj: opts.NewObject, out: w.out, done: make(chan struct{})}
	go func() {
		defer close(w.out)
		defer cancel()
		go func() { <-ctx.Done(); cw.stop() }()
		for resp := range ch {
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					// Compacted since the check above: tell the client to relist.
					cw.emit(watch.Event{Type: watch.Error, Object: goneStatus(err)})
				}
				return
			}
			if resp.IsProgressNotify() {
				if opts.Bookmarks && !cw.bookmark(resp.Header.Revision, false) {
					return
				}
			}
			for _, ev := range resp.Events {
				e, err := s.etcdEvent(ev)
				if err != nil {
					s.log.Error("skipping undecodable object", "key", string(ev.Kv.Key), "err", err)
					continue
				}
				if !cw.send(e) {
					return
				}
			}
		}
	}()
	return w, nil
}

func (s *Store) etcdEvent(ev *clientv3.Event) (event, error) {
	e := event{key: string(ev.Kv.Key), rev: ev.Kv.ModRevision}
	if ev.PrevKv != nil {
		prev, err := s.codec.decode(ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err != nil {
			return e, err
		}
		e.prev = prev
	}
	switch {
	case ev.Type == clientv3.EventTypeDelete:
		if e.prev == nil {
			return e, errors.New("deletion without the previous value")
		}
		e.typ, e.obj = watch.Deleted, e.prev.DeepCopyObject()
		setRV(e.obj, e.rev)
	default:
		obj, err := s.codec.decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return e, err
		}
		e.obj, e.typ = obj, watch.Added
		if e.prev != nil {
			e.typ = watch.Modified
		}
	}
	return e, nil
}

type etcdWatcher struct {
	out    chan watch.Event
	cancel context.CancelFunc
	once   sync.Once
}

func (w *etcdWatcher) ResultChan() <-chan watch.Event { return w.out }
func (w *etcdWatcher) Stop()                          { w.once.Do(w.cancel) }

func goneStatus(err error) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired,
		Message: "too old resource version: " + err.Error(),
	}
}
