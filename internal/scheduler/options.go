package scheduler

import "time"

// Option changes a Scheduler setting from its default.
type Option func(*config)

type config struct {
	bindConcurrency    int
	percentage         int32
	unschedulableRetry time.Duration
	backoffInitial     time.Duration
	backoffMax         time.Duration
	assumeTTL          time.Duration
	bindTimeout        time.Duration
	summaryInterval    time.Duration
	seed               uint64
	now                func() time.Time
}

func defaultConfig() config {
	return config{
		// Enough parallel binds to hide a loopback round trip of a few
		// milliseconds at well over 1,000 pods/s.
		bindConcurrency:    32,
		unschedulableRetry: 10 * time.Second,
		backoffInitial:     time.Second,
		backoffMax:         10 * time.Second,
		assumeTTL:          30 * time.Second,
		bindTimeout:        30 * time.Second,
		summaryInterval:    30 * time.Second,
		now:                time.Now,
	}
}

// WithBindConcurrency bounds the bind and status calls in flight (default 32).
// When all are busy, scheduling waits, which pushes back on a slow API.
func WithBindConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.bindConcurrency = n
		}
	}
}

// WithPercentageOfNodesToScore sets the share of nodes searched for feasible
// ones in large clusters (at least 100 nodes are always searched for). 0, the
// default, adapts as Kubernetes does: 50% minus 1% per 125 nodes, at least 5%.
func WithPercentageOfNodesToScore(percent int32) Option {
	return func(c *config) {
		c.percentage = max(percent, 0)
	}
}

// WithUnschedulableRetry sets how often pods that fit nowhere are retried
// even without a cluster change (default 10s).
func WithUnschedulableRetry(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.unschedulableRetry = d
		}
	}
}

// WithBackoff sets the per-pod back-off after a failed attempt: it starts at
// initial and doubles up to max (defaults 1s and 10s).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *config) {
		if initial > 0 && max >= initial {
			c.backoffInitial, c.backoffMax = initial, max
		}
	}
}

// WithAssumeTTL sets how long a pod bound by the scheduler counts against its
// node before the informer confirms the binding (default 30s).
func WithAssumeTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.assumeTTL = d
		}
	}
}

// WithSeed makes tie-breaking between equally good nodes reproducible.
func WithSeed(seed uint64) Option {
	return func(c *config) { c.seed = seed }
}
