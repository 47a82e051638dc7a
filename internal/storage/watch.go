package storage

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	// dispatchBudget bounds how long one batch may wait on slow watchers
	// before they are dropped (their clients re-watch from their last revision).
	dispatchBudget = 250 * time.Millisecond
	watcherBuffer  = 1024
	// bookmarkInterval keeps idle watchers' resourceVersion recent, so a
	// re-watch after a timeout resumes instead of relisting.
	bookmarkInterval = 5 * time.Second
)

// Predicate selects objects; nil selects all.
type Predicate func(obj runtime.Object) bool

func (p Predicate) matches(obj runtime.Object) bool { return p == nil || p(obj) }

// cacheWatcher delivers one client's watch: first its initial events, then live ones.
type cacheWatcher struct {
	prefix     string
	startRev   int64
	pred       Predicate
	initial    []event
	initialEnd bool // send the "initial-events-end" bookmark after initial
	bookmarks  bool
	newObj     func() runtime.Object
	dispatched func() int64

	in       chan event
	out      chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

func (w *cacheWatcher) ResultChan() <-chan watch.Event { return w.out }

// Stop ends the watch; the cache drops the watcher at its next dispatch.
func (w *cacheWatcher) Stop() { w.stop() }

func (w *cacheWatcher) stop() { w.stopOnce.Do(func() { close(w.done) }) }

func (w *cacheWatcher) stopped() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// offer queues ev, waiting until deadline at most; false means the watcher is too slow.
func (w *cacheWatcher) offer(ev event, deadline time.Time) bool {
	select {
	case w.in <- ev:
		return true
	case <-w.done:
		return false
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case w.in <- ev:
		return true
	case <-w.done:
		return false
	case <-t.C:
		return false
	}
}

func (w *cacheWatcher) run() {
	defer close(w.out)
	for _, ev := range w.initial {
		if !w.send(ev) {
			return
		}
	}
	w.initial = nil
	if w.initialEnd && !w.bookmark(w.startRev, true) {
		return
	}
	var tick <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev := <-w.in:
			if !w.send(ev) {
				return
			}
		case <-tick:
			// Everything up to rev is already queued in w.in: send it first.
			rev := w.dispatched()
			for drained := false; !drained; {
				select {
				case ev := <-w.in:
					if !w.send(ev) {
						return
					}
				default:
					drained = true
				}
			}
			if !w.bookmark(rev, false) {
				return
			}
		case <-w.done:
			return
		}
	}
}

// send filters ev through the predicate: an object that stops matching is
// reported deleted, one that starts matching added.
func (w *cacheWatcher) send(ev event) bool {
	typ := ev.typ
	switch typ {
	case watch.Added:
		if !w.pred.matches(ev.obj) {
			return true
		}
	case watch.Modified:
		was, is := w.pred.matches(ev.prev), w.pred.matches(ev.obj)
		switch {
		case !was && !is:
			return true
		case !was:
			typ = watch.Added
		case !is:
			typ = watch.Deleted
		}
	case watch.Deleted:
		if !w.pred.matches(ev.prev) {
			return true
		}
	}
	return w.emit(watch.Event{Type: typ, Object: ev.obj})
}

func (w *cacheWatcher) bookmark(rev int64, initialEnd bool) bool {
	if w.newObj == nil {
		return true
	}
	obj := w.newObj()
	m, err := meta.Accessor(obj)
	if err != nil {
		return true
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return w.emit(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *cacheWatcher) emit(ev watch.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.done:
		return false
	}
}
