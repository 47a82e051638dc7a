// Package testwait waits in tests for a condition that other goroutines
// or processes make true. It imports nothing of the project, so any
// package's tests can use it.
package testwait

import (
	"testing"
	"time"
)

// Timeout only bounds a hung test; a condition that holds returns at once.
const Timeout = 30 * time.Second

// For polls cond until it holds, and fails the test after Timeout with
// what and the detail cond last gave. It polls every millisecond at
// first, backing off to every 10 ms: most conditions hold within a few
// milliseconds, and tests wait for them often.
func For(t testing.TB, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	pause := time.Millisecond
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen: %s", what, detail)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}
