package controllerutil

import (
	"sync"
	"time"
)

// ExpectationsTimeout bounds how long unobserved expectations block a
// controller: a watch event can be lost (a relist replaces it with a
// tombstone or nothing), and a controller must not wait forever for it.
const ExpectationsTimeout = 5 * time.Minute

// Expectations records, per controller key ("namespace/name"), the creations
// and deletions the controller has issued but not yet observed through its
// informers. While they are outstanding the informer cache does not reflect
// the controller's own writes, and acting on it would create or delete twice.
//
// Creations are counted (their names are only known after the API server
// generates them); deletions are tracked by object key so that a deletion
// seen twice (a deletionTimestamp update, then the delete event) counts once.
type Expectations struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*expectation
}

type expectation struct {
	adds    int
	deletes map[string]struct{}
	setAt   time.Time
}

// NewExpectations returns an empty set of expectations.
func NewExpectations() *Expectations {
	return &Expectations{now: time.Now, m: make(map[string]*expectation)}
}

// ExpectCreations replaces the expectations of key with n creations.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{adds: n, setAt: e.now()}
}

// CreationObserved lowers the creations expected for key by one. Callers
// also use it to give back creations they skipped or that failed.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok {
		exp.adds--
	}
}

// ExpectDeletions replaces the expectations of key with the deletion of the
// objects whose keys are given.
func (e *Expectations) ExpectDeletions(key string, objKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := &expectation{deletes: make(map[string]struct{}, len(objKeys)), setAt: e.now()}
	for _, k := range objKeys {
		exp.deletes[k] = struct{}{}
	}
	e.m[key] = exp
}

// DeletionObserved records that the object objKey is gone or going; it only
// counts if that deletion was expected.
func (e *Expectations) DeletionObserved(key, objKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.m[key]; ok {
		delete(exp.deletes, objKey)
	}
}

// Satisfied reports whether key may act on its cache: nothing is expected,
// everything expected was observed, or the expectations expired.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.m[key]
	if !ok {
		return true
	}
	if exp.adds <= 0 && len(exp.deletes) == 0 {
		return true
	}
	return e.now().Sub(exp.setAt) > ExpectationsTimeout
}

// Delete forgets key, for example when its controller object is deleted, so
// that a new object of the same name starts clean.
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// ExpectCreationsAndDeletions replaces the expectations of key with n
// creations and the deletion of the objects whose keys are given, for a
// controller that does both in one sync (a DaemonSet's).
func (e *Expectations) ExpectCreationsAndDeletions(key string, n int, objKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := &expectation{adds: n, deletes: make(map[string]struct{}, len(objKeys)), setAt: e.now()}
	for _, k := range objKeys {
		exp.deletes[k] = struct{}{}
	}
	e.m[key] = exp
}
