package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors; callers test them with errors.Is and map them to API codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict: a resourceVersion or uid precondition did not hold.
	ErrConflict = errors.New("object has been modified")
	// ErrGone: the requested revision was compacted or fell out of the cache's history.
	ErrGone = errors.New("resource version too old")
	// ErrTooLarge: the requested revision is newer than any the store has seen in time.
	ErrTooLarge = errors.New("resource version too large")
	// ErrBadContinue: a continue token that this store did not issue.
	ErrBadContinue = errors.New("invalid continue token")
)

// keyError wraps a sentinel with the key it concerns.
func keyError(kind error, key string) error { return fmt.Errorf("%s: %w", key, kind) }
