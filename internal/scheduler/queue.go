package scheduler

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

type entryState uint8

const (
	stateActive entryState = iota
	stateInFlight
	stateBackoff
	stateUnschedulable
	stateGone
)

// entry is one pending pod in the queue, keyed by namespace/name. It stays in
// the queue while in flight so informer updates reach it and so a failed
// attempt can be put back.
type entry struct {
	key   string
	pod   *corev1.Pod
	state entryState

	attempts int
	retryAt  time.Time // end of the back-off after the last failure
	since    time.Time // when the pod became unschedulable
	popSeq   uint64    // queue.moveSeq when the pod was popped
	changed  bool      // the pod's spec changed while in flight

	lastMessage string // last FailedScheduling message, to avoid event storms
}

// queue holds pending pods: a FIFO of active ones, deduplicated by key, plus
// pods backing off after a failure and pods that fit nowhere, which wait for
// a cluster change or the periodic retry.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond
	entries map[string]*entry
	fifo    []*entry // may hold stale entries, skipped on pop
	head    int
	backoff map[string]*entry
	unsched map[string]*entry
	moveSeq uint64
	closed  bool

	now            func() time.Time
	backoffInitial time.Duration
	backoffMax     time.Duration
	retryAfter     time.Duration // periodic retry of unschedulable pods
}

func newQueue(now func() time.Time, backoffInitial, backoffMax, retryAfter time.Duration) *queue {
	q := &queue{
		entries:        make(map[string]*entry),
		backoff:        make(map[string]*entry),
		unsched:        make(map[string]*entry),
		now:            now,
		backoffInitial: backoffInitial,
		backoffMax:     backoffMax,
		retryAfter:     retryAfter,
	}
	q.cond.L = &q.mu
	return q
}

// add queues a pending pod, or refreshes the copy of one already queued. A
// spec change sends a waiting pod back to the active queue, since it may fit
// now; a status-only change (such as our own condition) does not.
func (q *queue) add(key string, pod *corev1.Pod, changed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[key]
	if e == nil {
		e = &entry{key: key, pod: pod}
		q.entries[key] = e
		q.pushLocked(e)
		return
	}
	e.pod = pod
	if !changed {
		return
	}
	switch e.state {
	case stateInFlight:
		e.changed = true
	case stateUnschedulable, stateBackoff:
		q.leaveWaitLocked(e)
		q.pushLocked(e)
	}
}

// has reports whether the pod is queued in any state.
func (q *queue) has(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.entries[key] != nil
}

func (q *queue) delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.entries[key]; e != nil {
		q.removeLocked(e)
	}
}

// pop blocks until a pod is active or the queue is closed; a closed queue
// returns nothing more, so shutdown does not schedule what is left.
func (q *queue) pop() (*entry, *corev1.Pod, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return nil, nil, false
		}
		for q.head < len(q.fifo) {
			e := q.fifo[q.head]
			q.fifo[q.head] = nil
			q.head++
			if e.state != stateActive {
				continue
			}
			if q.head == len(q.fifo) {
				q.fifo, q.head = q.fifo[:0], 0
			}
			e.state = stateInFlight
			e.popSeq = q.moveSeq
			e.changed = false
			return e, e.pod, true
		}
		q.fifo, q.head = q.fifo[:0], 0
		q.cond.Wait()
	}
}

// done ends an in-flight pod's stay: it was bound, or is not ours to schedule.
func (q *queue) done(e *entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries[e.key] == e {
		q.removeLocked(e)
	}
}

// unschedulable parks an in-flight pod that fits nowhere and reports whether
// its message differs from the last one reported. A cluster change seen while
// the pod was in flight could have made room, so then it retries after its
// back-off instead of waiting for the next change.
func (q *queue) unschedulable(e *entry, message string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries[e.key] != e {
		return false // deleted meanwhile: nothing to report
	}
	newMessage := message != e.lastMessage
	e.lastMessage = message
	now := q.now()
	q.failedLocked(e, now)
	if q.moveSeq != e.popSeq || e.changed {
		q.backoffOrActiveLocked(e, now)
		return newMessage
	}
	e.state = stateUnschedulable
	e.since = now
	q.unsched[e.key] = e
	return newMessage
}

// retry puts an in-flight pod back after an error (a failed bind) once its
// back-off has passed.
func (q *queue) retry(e *entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries[e.key] != e {
		return
	}
	now := q.now()
	q.failedLocked(e, now)
	q.backoffOrActiveLocked(e, now)
}

// moveAll wakes unschedulable pods after a cluster change that could help.
func (q *queue) moveAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveSeq++
	now := q.now()
	for _, e := range q.unsched {
		q.leaveWaitLocked(e)
		q.backoffOrActiveLocked(e, now)
	}
}

// flush activates pods whose back-off is over and retries pods that have
// been unschedulable for retryAfter, in case a change went unnoticed.
func (q *queue) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, e := range q.backoff {
		if !now.Before(e.retryAt) {
			q.leaveWaitLocked(e)
			q.pushLocked(e)
		}
	}
	for _, e := range q.unsched {
		if now.Sub(e.since) >= q.retryAfter {
			q.leaveWaitLocked(e)
			q.backoffOrActiveLocked(e, now)
		}
	}
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// lengths returns the sizes of the active, back-off and unschedulable sets.
func (q *queue) lengths() (active, backoff, unsched int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.fifo[q.head:] {
		if e.state == stateActive {
			active++
		}
	}
	return active, len(q.backoff), len(q.unsched)
}

func (q *queue) failedLocked(e *entry, now time.Time) {
	e.attempts++
	d := q.backoffInitial
	for i := 1; i < e.attempts && d < q.backoffMax; i++ {
		d *= 2
	}
	e.retryAt = now.Add(min(d, q.backoffMax))
}

func (q *queue) backoffOrActiveLocked(e *entry, now time.Time) {
	if now.Before(e.retryAt) {
		e.state = stateBackoff
		q.backoff[e.key] = e
		return
	}
	q.pushLocked(e)
}

func (q *queue) pushLocked(e *entry) {
	// Reclaim the popped prefix before append would grow the array, so a
	// queue that never drains does not grow without bound.
	if q.head > 0 && len(q.fifo) == cap(q.fifo) && q.head >= len(q.fifo)/2 {
		n := copy(q.fifo, q.fifo[q.head:])
		clear(q.fifo[n:])
		q.fifo, q.head = q.fifo[:n], 0
	}
	e.state = stateActive
	q.fifo = append(q.fifo, e)
	q.cond.Signal()
}

func (q *queue) leaveWaitLocked(e *entry) {
	delete(q.backoff, e.key)
	delete(q.unsched, e.key)
}

func (q *queue) removeLocked(e *entry) {
	q.leaveWaitLocked(e)
	delete(q.entries, e.key)
	e.state = stateGone
}
