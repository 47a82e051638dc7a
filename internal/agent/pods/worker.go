package pods

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// podWorker serialises the syncs of one pod.
type podWorker struct {
	uid  types.UID
	wake chan struct{}

	// due is when the relist loop wakes the worker again (zero: only on
	// events); guarded by Manager.mu.
	due time.Time

	// Owned by the worker's goroutine.
	errDelay time.Duration
	// killDeadline is when the grace period of a deleted pod ends.
	killDeadline time.Time
}

// syncResult says how a sync ended.
type syncResult struct {
	// requeue is when to sync again at the latest; zero waits for events
	// and the periodic resync.
	requeue time.Duration
	// done: the pod is gone from the API and the node; the worker ends.
	done bool
}

// ensureWorker starts the worker of uid unless it runs; it reports
// whether it started one.
func (m *Manager) ensureWorker(uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workers[uid]; ok {
		return false
	}
	w := &podWorker{uid: uid, wake: make(chan struct{}, 1)}
	m.workers[uid] = w
	m.wg.Add(1)
	go m.runWorker(w)
	return true
}

// wake asks uid's worker to sync soon; extra wakes while one is pending
// coalesce.
func (m *Manager) wake(uid types.UID) {
	m.mu.Lock()
	w := m.workers[uid]
	m.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) runWorker(w *podWorker) {
	defer m.wg.Done()
	// Workers live as long as Run; informer callbacks that start them
	// have no context of their own.
	ctx := m.runCtx
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		// Requeue times count from the start of the sync: the state it
		// acted on is that old.
		start := m.clock.Now()
		res, err := m.syncPod(ctx, w)
		if ctx.Err() != nil {
			return
		}
		m.syncs.Add(1)
		if err != nil {
			// CRI or API trouble: retry later, doubling, never in a loop.
			w.errDelay = min(max(2*w.errDelay, time.Second), maxErrorDelay)
			res.requeue = w.errDelay
			m.log.Warn("pod sync failed", "uid", w.uid, "retryIn", w.errDelay, "err", err)
		} else {
			w.errDelay = 0
		}
		if res.done {
			m.removeWorker(w)
			return
		}
		m.mu.Lock()
		w.due = time.Time{}
		if res.requeue > 0 {
			w.due = start.Add(res.requeue)
		}
		overdue := !w.due.IsZero() && !m.clock.Now().Before(w.due)
		m.mu.Unlock()
		// The relist may have looked while this sync ran.
		if overdue {
			m.wake(w.uid)
		}
	}
}

// removeWorker forgets everything about a pod that is gone.
func (m *Manager) removeWorker(w *podWorker) {
	m.mu.Lock()
	delete(m.workers, w.uid)
	m.mu.Unlock()
	m.probes.Remove(w.uid)
	m.objects.unregister(w.uid)
	m.tokens.forget(w.uid)
	m.restarts.forgetPod(w.uid)
	m.pulls.forgetPod(w.uid)
	m.reasons.forgetPod(w.uid)
	m.statuses.forget(w.uid)
}

// wakeDue wakes the workers whose requeue time has come.
func (m *Manager) wakeDue() {
	now := m.clock.Now()
	m.mu.Lock()
	var due []types.UID
	for uid, w := range m.workers {
		if !w.due.IsZero() && !now.Before(w.due) {
			w.due = time.Time{}
			due = append(due, uid)
		}
	}
	m.mu.Unlock()
	for _, uid := range due {
		m.wake(uid)
	}
}

// wakeAll is the periodic full resync.
func (m *Manager) wakeAll() {
	m.mu.Lock()
	uids := make([]types.UID, 0, len(m.workers))
	for uid := range m.workers {
		uids = append(uids, uid)
	}
	m.mu.Unlock()
	for _, uid := range uids {
		m.wake(uid)
	}
}
