package job

import (
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// backoffRecord is what the pod failure back-off of one Job depends on: the
// failures since the last success and when the last one happened. It lives
// in memory only, as in Kubernetes: after a restart the controller replaces
// failed pods at once, once.
type backoffRecord struct {
	key                      string
	failuresAfterLastSuccess int32
	lastFailureTime          *time.Time
}

type backoffStore struct {
	mu      sync.Mutex
	records map[string]backoffRecord
}

func newBackoffStore() *backoffStore {
	return &backoffStore{records: map[string]backoffRecord{}}
}

func (s *backoffStore) update(r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[r.key] = r
}

func (s *backoffStore) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
}

// newRecord returns key's record updated with the pods that finished since
// the last sync (not yet counted): a success resets it, the failures after
// the last success add up.
func (s *backoffStore) newRecord(key string, succeeded, failed []*v1.Pod) backoffRecord {
	s.mu.Lock()
	r, ok := s.records[key]
	s.mu.Unlock()
	if !ok {
		r = backoffRecord{key: key}
	}
	sortByFinishedTime(succeeded)
	sortByFinishedTime(failed)
	switch {
	case len(succeeded) == 0 && len(failed) == 0:
		return r
	case len(succeeded) == 0:
		r.failuresAfterLastSuccess += int32(len(failed))
		last := finishedTime(failed[len(failed)-1])
		r.lastFailureTime = &last
		return r
	}
	r.failuresAfterLastSuccess, r.lastFailureTime = 0, nil
	lastSuccess := finishedTime(succeeded[len(succeeded)-1])
	for i := len(failed) - 1; i >= 0; i-- {
		t := finishedTime(failed[i])
		if !t.After(lastSuccess) {
			break
		}
		if r.lastFailureTime == nil {
			r.lastFailureTime = &t
		}
		r.failuresAfterLastSuccess++
	}
	return r
}

// remainingTime is how long until a replacement may be created.
func (r backoffRecord) remainingTime(clk clock.PassiveClock, base, maxDelay time.Duration) time.Duration {
	return remainingBackoff(clk, base, maxDelay, r.failuresAfterLastSuccess, r.lastFailureTime)
}

// remainingBackoffPerIndex is remainingTime for one index of a Job with
// backoffLimitPerIndex: the failures are lastFailed's count plus one.
func remainingBackoffPerIndex(clk clock.PassiveClock, base, maxDelay time.Duration, lastFailed *v1.Pod) time.Duration {
	if lastFailed == nil {
		return 0
	}
	t := finishedTime(lastFailed)
	return remainingBackoff(clk, base, maxDelay, absoluteIndexFailureCount(lastFailed)+1, &t)
}

// remainingBackoff: base after one failure, doubled for each further one up
// to maxDelay, counted from the last failure.
func remainingBackoff(clk clock.PassiveClock, base, maxDelay time.Duration, failures int32, lastFailure *time.Time) time.Duration {
	if failures == 0 || lastFailure == nil {
		return 0
	}
	delay := base
	for i := int32(1); i < failures; i++ {
		delay *= 2
		if delay >= maxDelay {
			delay = maxDelay
			break
		}
	}
	elapsed := clk.Since(*lastFailure)
	if delay < elapsed {
		return 0
	}
	return delay - elapsed
}

func sortByFinishedTime(pods []*v1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return finishedTime(pods[i]).Before(finishedTime(pods[j])) })
}

// finishedTime estimates when pod finished: its last container's end, else
// when it stopped being ready, else when its deletion began (minus the
// grace period), else its creation.
func finishedTime(p *v1.Pod) time.Time {
	if t := containersFinishedTime(p); t != nil {
		return *t
	}
	if c := controllerutil.PodReadyCondition(&p.Status); c != nil && c.Status == v1.ConditionFalse && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if p.DeletionTimestamp != nil {
		var grace int64
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		return p.DeletionTimestamp.Add(-time.Duration(grace) * time.Second)
	}
	return p.CreationTimestamp.Time
}

// containersFinishedTime is the latest container end, if all containers
// ended with a known time.
func containersFinishedTime(p *v1.Pod) *time.Time {
	var last *time.Time
	for i := range p.Status.ContainerStatuses {
		t := p.Status.ContainerStatuses[i].State.Terminated
		if t == nil || t.FinishedAt.IsZero() {
			return nil
		}
		if last == nil || last.Before(t.FinishedAt.Time) {
			last = &t.FinishedAt.Time
		}
	}
	return last
}
