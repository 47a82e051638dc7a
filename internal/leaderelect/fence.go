// Package leaderelect runs a process's singleton work (the scheduler and
// controllers of a `wharf server`) on exactly one of several processes at
// a time, through client-go's leader election on a coordination.k8s.io
// Lease, and fences that work: a process that can no longer be sure it
// holds the lease refuses its own writes before they leave it.
//
// The fence is what makes a paused leader harmless. client-go's elector
// notices a lost lease only when a renewal fails; a process frozen (SIGSTOP,
// a stalled VM) past its lease wakes up with its controllers' queues full
// and the elector asleep, and would write for up to a renew deadline while
// another process already leads. The fence looks at the local monotonic
// clock instead: a write is let through only while the last renewal this
// process saw succeed is younger than the lease duration minus a margin.
package leaderelect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// ErrFenced is the error of a write refused because this process does not
// hold the lease (by its own clock).
var ErrFenced = errors.New("write refused: this server does not hold the controllers' lease")

// Fence says whether this process holds the lease by its own clock: the
// time since the last successful acquire or renewal, measured from when
// that write was sent, is below the validity. Times come from clk: with
// the real clock they carry Go's monotonic reading, which wall-clock steps
// do not move and which keeps running while the process is stopped.
type Fence struct {
	clk      clock.PassiveClock
	validity time.Duration
	log      *slog.Logger
	refused  prometheus.Counter

	mu      sync.Mutex
	renewed time.Time // zero: not held
	warned  bool      // the refusal since the last renewal was logged
}

// NewFence returns a fence that is not held. refused, if not nil, counts
// the writes it refuses.
func NewFence(log *slog.Logger, clk clock.PassiveClock, validity time.Duration, refused prometheus.Counter) *Fence {
	return &Fence{clk: clk, validity: validity, log: log, refused: refused}
}

// Renewed records a successful acquire or renewal whose request was sent
// at sent. A renewal answered late never moves the fence back.
func (f *Fence) Renewed(sent time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sent.After(f.renewed) {
		f.renewed = sent
	}
	f.warned = false
}

// Revoke drops the lease at once: before releasing it, or when the elector
// says it is lost.
func (f *Fence) Revoke() {
	f.mu.Lock()
	f.renewed = time.Time{}
	f.mu.Unlock()
}

// Held says whether the lease is held now.
func (f *Fence) Held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heldLocked()
}

func (f *Fence) heldLocked() bool {
	return !f.renewed.IsZero() && f.clk.Since(f.renewed) < f.validity
}

// Allow returns nil if a request of this method may be sent: reads always,
// writes only while the lease is held. A refusal is counted, and logged
// once per loss.
func (f *Fence) Allow(method string) error {
	if isRead(method) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.heldLocked() {
		return nil
	}
	if f.refused != nil {
		f.refused.Inc()
	}
	if !f.warned {
		f.warned = true
		var age any = "never renewed or revoked"
		if !f.renewed.IsZero() {
			age = f.clk.Since(f.renewed).Round(time.Millisecond).String()
		}
		f.log.Warn("lease not held: refusing the controllers' writes until it is acquired again", "last_renewal_age", age, "validity", f.validity)
	}
	return ErrFenced
}

func isRead(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// Wrap returns a RoundTripper that sends through rt only what Allow
// allows; a refused request never leaves the process.
func (f *Fence) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &fencedTransport{fence: f, next: rt}
}

type fencedTransport struct {
	fence *Fence
	next  http.RoundTripper
}

func (t *fencedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.fence.Allow(req.Method); err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return t.next.RoundTrip(req)
}
