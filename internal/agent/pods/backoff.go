package pods

import (
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// backOff delays retries per key exponentially. Each failure is
// identified by a cause (the container that exited, or a pull attempt),
// so seeing the same failure on every sync counts it once.
type backOff struct {
	clock   clock.PassiveClock
	initial time.Duration
	max     time.Duration
	// immediateFirst makes the first failure's retry immediate, as the
	// kubelet does for a container's first restart.
	immediateFirst bool

	mu      sync.Mutex
	entries map[string]*backOffEntry
}

type backOffEntry struct {
	// last is the failure being waited out; seen holds every failure
	// counted since the last reset.
	last  string
	seen  map[string]bool
	delay time.Duration
	until time.Time
}

// maxSeen bounds the failures an entry remembers; older ones are
// forgotten (and would count again, which merely lengthens a wait).
const maxSeen = 64

func newBackOff(clk clock.PassiveClock, initial, max time.Duration, immediateFirst bool) *backOff {
	return &backOff{clock: clk, initial: initial, max: max, immediateFirst: immediateFirst, entries: map[string]*backOffEntry{}}
}

// failed records the failure cause of key unless already recorded, and
// returns how long the retry must still wait and the current delay. reset
// restarts the progression, for a container that ran long enough to count
// as healthy.
func (b *backOff) failed(key, cause string, reset bool) (wait, delay time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	e, ok := b.entries[key]
	if ok && e.seen[cause] {
		return max(e.until.Sub(now), 0), e.delay
	}
	next := b.initial
	switch {
	case !ok || reset:
		if b.immediateFirst {
			next = 0
		}
		e = &backOffEntry{seen: map[string]bool{}}
		b.entries[key] = e
	case e.delay > 0:
		next = min(2*e.delay, b.max)
	}
	if len(e.seen) >= maxSeen {
		e.seen = map[string]bool{}
	}
	e.seen[cause], e.last = true, cause
	e.delay, e.until = next, now.Add(next)
	return max(e.until.Sub(now), 0), e.delay
}

// remaining is how long key must still wait, zero when it may retry.
func (b *backOff) remaining(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return max(e.until.Sub(b.clock.Now()), 0)
	}
	return 0
}

// cause is the failure key is waiting out.
func (b *backOff) cause(key string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.last
	}
	return ""
}

// delay is key's current delay, for messages.
func (b *backOff) delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

func (b *backOff) reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// forgetPod drops the keys of a pod (they start with its UID).
func (b *backOff) forgetPod(uid types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if strings.HasPrefix(k, string(uid)+"/") {
			delete(b.entries, k)
		}
	}
}

func backOffKey(uid types.UID, name string) string { return string(uid) + "/" + name }

// waiting is why a container is not running, for its status.
type waiting struct {
	reason, message string
	// cause ties the reason to the failure it describes (a container ID),
	// so that a later failure replaces it.
	cause string
}

// reasons remembers, per pod and container, why the last attempt to start
// the container did not succeed, like the kubelet's reason cache.
type reasons struct {
	mu sync.Mutex
	m  map[types.UID]map[string]waiting
}

func newReasons() *reasons { return &reasons{m: map[types.UID]map[string]waiting{}} }

func (r *reasons) set(uid types.UID, name string, w waiting) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[uid] == nil {
		r.m[uid] = map[string]waiting{}
	}
	r.m[uid][name] = w
}

func (r *reasons) clear(uid types.UID, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[uid], name)
}

func (r *reasons) get(uid types.UID, name string) (waiting, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.m[uid][name]
	return w, ok
}

// pod returns a copy of the pod's reasons.
func (r *reasons) pod(uid types.UID) map[string]waiting {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]waiting, len(r.m[uid]))
	for k, v := range r.m[uid] {
		out[k] = v
	}
	return out
}

func (r *reasons) forgetPod(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, uid)
}
