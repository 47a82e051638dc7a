package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// uidSet is a set of pod uids.
type uidSet map[types.UID]struct{}

func newUIDSet(uids ...types.UID) uidSet {
	s := make(uidSet, len(uids))
	for _, u := range uids {
		s[u] = struct{}{}
	}
	return s
}

func (s uidSet) has(u types.UID) bool {
	_, ok := s[u]
	return ok
}

// uidExpectations records, per Job key, the pods whose tracking finalizer
// the controller removed and has not yet seen removed.
type uidExpectations struct {
	mu sync.Mutex
	m  map[string]uidSet
}

func newUIDExpectations() *uidExpectations {
	return &uidExpectations{m: map[string]uidSet{}}
}

func (e *uidExpectations) expect(key string, uids []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.m[key]
	if s == nil {
		s = uidSet{}
		e.m[key] = s
	}
	for _, u := range uids {
		s[u] = struct{}{}
	}
}

func (e *uidExpectations) observed(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m[key], uid)
}

// expected returns a copy of key's expected uids.
func (e *uidExpectations) expected(key string) uidSet {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(uidSet, len(e.m[key]))
	for u := range e.m[key] {
		out[u] = struct{}{}
	}
	return out
}

func (e *uidExpectations) delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// trackStatus counts the finished pods and writes the status, in the order
// that makes counting safe:
//
//  1. record the uids of newly finished pods in uncountedTerminatedPods
//     (and the interim FailureTarget or SuccessCriteriaMet condition), and
//     write the status;
//  2. remove their tracking finalizers;
//  3. move the uids whose finalizer is gone to the succeeded and failed
//     counters;
//  4. once nothing is uncounted and no pod terminates, add the final
//     Complete or Failed condition.
//
// A pod deleted after step 1 is counted from its uid; before step 1 it
// could not be deleted (the finalizer holds it). At most maxUncountedPods
// are recorded per sync; the next sync does the rest.
func (c *Controller) trackStatus(ctx context.Context, jc *syncCtx, needsFlush bool) error {
	job := jc.job
	indexed := isIndexed(job)
	if indexed {
		// New indexes are then added in order.
		sortByIndex(jc.pods)
	}
	withFinalizer := uidSet{}
	for _, p := range jc.pods {
		if hasTrackingFinalizer(p) && !jc.expectedRmFinalizers.has(p.UID) {
			withFinalizer[p.UID] = struct{}{}
		}
	}
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	uncountedStatus := job.Status.UncountedTerminatedPods
	var rmFinalizer []*v1.Pod
	var newSucceededIndexes []int
	reachedMax := false
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) || jc.expectedRmFinalizers.has(p.UID) {
			continue // counted in an earlier sync
		}
		failed := isPodFailed(p, job)
		if !c.canRemoveFinalizer(jc, p, failed) {
			continue
		}
		rmFinalizer = append(rmFinalizer, p)
		switch {
		case p.Status.Phase == v1.PodSucceeded && !jc.uncounted.failed.has(p.UID):
			if indexed {
				// The index is enough to never count it twice.
				if ix := completionIndex(p); validIndex(job, p) && !jc.prevSucceededIndexes.has(ix) {
					newSucceededIndexes = append(newSucceededIndexes, ix)
					needsFlush = true
				}
			} else if !jc.uncounted.succeeded.has(p.UID) {
				uncountedStatus.Succeeded = append(uncountedStatus.Succeeded, p.UID)
				needsFlush = true
			}
		case failed || (jc.finished != nil && jc.finished.Type != batchv1.JobSuccessCriteriaMet):
			// A Job that fails counts every unfinished pod as failed.
			if jc.uncounted.failed.has(p.UID) || (indexed && !validIndex(job, p)) {
				break
			}
			if job.Spec.PodFailurePolicy == nil || matchPodFailurePolicy(job.Spec.PodFailurePolicy, p).count {
				uncountedStatus.Failed = append(uncountedStatus.Failed, p.UID)
				needsFlush = true
			}
		}
		if len(newSucceededIndexes)+len(uncountedStatus.Succeeded)+len(uncountedStatus.Failed) >= maxUncountedPods {
			reachedMax = true
			break
		}
	}
	if indexed {
		jc.succeededIndexes = jc.succeededIndexes.withIndexes(newSucceededIndexes)
		if s := jc.succeededIndexes.String(); s != job.Status.CompletedIndexes {
			job.Status.CompletedIndexes = s
			needsFlush = true
		}
		job.Status.Succeeded = int32(jc.succeededIndexes.total())
		var failedIndexes *string
		if jc.hasFailedIndexes {
			s := jc.failedIndexes.String()
			failedIndexes = &s
		}
		if !equalStringPtr(failedIndexes, job.Status.FailedIndexes) {
			job.Status.FailedIndexes = failedIndexes
			needsFlush = true
		}
	}
	switch {
	case jc.finished != nil && jc.finished.Type == batchv1.JobFailureTarget:
		// Record the failure before the finalizers go, so that it
		// survives a restart; Failed follows once the pods are gone.
		job.Status.Conditions = append(job.Status.Conditions, *jc.finished)
		needsFlush = true
		jc.finished = c.newCondition(batchv1.JobFailed, jc.finished.Reason, jc.finished.Message)
	case jc.finished != nil && jc.finished.Type == batchv1.JobSuccessCriteriaMet:
		if trueCondition(job, batchv1.JobSuccessCriteriaMet) == nil {
			job.Status.Conditions = append(job.Status.Conditions, *jc.finished)
			needsFlush = true
		}
		jc.finished = c.newCondition(batchv1.JobComplete, jc.finished.Reason, jc.finished.Message)
	}

	var err error
	if needsFlush, err = c.flushAndRemoveFinalizers(ctx, jc, rmFinalizer, withFinalizer, needsFlush); err != nil {
		return err
	}
	job = jc.job
	finished := !reachedMax && c.enactFinished(jc)
	if !finished && !needsFlush {
		return nil
	}
	if _, err := c.updateStatus(ctx, job); err != nil {
		return err
	}
	if finished {
		c.recordFinished(job, jc.finished)
	}
	return nil
}

// flushAndRemoveFinalizers writes the status if needed (step 1), removes
// the finalizers (2) and counts the pods whose finalizer went (3). It
// reports whether the status has changes left to write.
func (c *Controller) flushAndRemoveFinalizers(ctx context.Context, jc *syncCtx, pods []*v1.Pod, withFinalizer uidSet, needsFlush bool) (bool, error) {
	if needsFlush {
		updated, err := c.updateStatus(ctx, jc.job)
		if err != nil {
			return needsFlush, fmt.Errorf("add uncounted pods to status: %w", err)
		}
		jc.job = updated
		c.backoff.update(jc.newBackoff)
		needsFlush = false
	}
	var rmErr error
	if len(pods) > 0 {
		var removed []bool
		removed, rmErr = c.removeFinalizers(ctx, jc.key, pods)
		for i, p := range pods {
			if removed[i] {
				delete(withFinalizer, p.UID)
			}
		}
	}
	if countUncounted(&jc.job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil && needsFlush {
		// Keep the partial progress.
		if updated, err := c.updateStatus(ctx, jc.job); err != nil {
			return needsFlush, errors.Join(rmErr, fmt.Errorf("remove uncounted pods from status: %w", err))
		} else {
			jc.job = updated
		}
	}
	return needsFlush, rmErr
}

// removeFinalizers removes the tracking finalizer from pods in parallel and
// reports for each whether it is gone (a pod already deleted counts).
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*v1.Pod) ([]bool, error) {
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	c.finalizerExpectations.expect(key, uids)
	removed := make([]bool, len(pods))
	errCh := make(chan error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			err := c.removeFinalizer(ctx, pod)
			if err != nil {
				// No update will show this removal.
				c.finalizerExpectations.observed(key, pod.UID)
				if !apierrors.IsNotFound(err) {
					errCh <- err
					return
				}
			}
			removed[i] = true
		})
	}
	wg.Wait()
	close(errCh)
	return removed, <-errCh
}

// countUncounted moves the uids in uncountedTerminatedPods whose pod no
// longer has the finalizer (or is gone) to the counters, and reports
// whether the status changed.
func countUncounted(status *batchv1.JobStatus, withFinalizer uidSet) bool {
	u := status.UncountedTerminatedPods
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.has(uid) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		status.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded = left
		changed = true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		status.Failed += int32(len(u.Failed) - len(left))
		u.Failed = left
		changed = true
	}
	return changed
}

// canRemoveFinalizer: the pod is counted now if the Job is being deleted or
// ending, or the pod succeeded, or it failed (unless, with
// backoffLimitPerIndex, its replacement still needs its failure count).
func (c *Controller) canRemoveFinalizer(jc *syncCtx, pod *v1.Pod, failed bool) bool {
	if jc.job.DeletionTimestamp != nil || jc.finished != nil || pod.Status.Phase == v1.PodSucceeded {
		return true
	}
	if !failed {
		return false
	}
	if hasBackoffLimitPerIndex(jc.job) {
		if ix := completionIndex(pod); ix != unknownIndex {
			if p, ok := jc.delayedDeletion[ix]; ok && p.UID == pod.UID {
				return false
			}
		}
	}
	return true
}

// enactFinished adds the final condition once every pod is counted and
// none terminates, and reports whether it did.
func (c *Controller) enactFinished(jc *syncCtx) bool {
	if jc.finished == nil {
		return false
	}
	job := jc.job
	if u := job.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		return false
	}
	if jc.terminating > 0 {
		return false
	}
	f := jc.finished
	c.ensureCondition(job, f.Type, f.Status, f.Reason, f.Message)
	if f.Type == batchv1.JobComplete {
		t := f.LastTransitionTime
		job.Status.CompletionTime = &t
	}
	return true
}

// recordFinished records the event of a Job that just finished.
func (c *Controller) recordFinished(job *batchv1.Job, cond *batchv1.JobCondition) {
	if cond.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, v1.EventTypeWarning, reasonTooManySucceeded, "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, v1.EventTypeNormal, reasonCompleted, "Job completed")
		c.logger.Info("job completed", "job", keyOf(job.Namespace, job.Name), "succeeded", job.Status.Succeeded)
		return
	}
	c.recorder.Event(job, v1.EventTypeWarning, cond.Reason, cond.Message)
	c.logger.Info("job failed", "job", keyOf(job.Namespace, job.Name), "reason", cond.Reason, "failed", job.Status.Failed)
}

// updateStatus writes job's status. A conflict fails the sync, which is
// retried on a fresher cache: the status depends on what the sync saw.
func (c *Controller) updateStatus(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	updated, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	if err != nil {
		return job, fmt.Errorf("update status of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.written.record(keyOf(job.Namespace, job.Name), updated)
	return updated, nil
}

// statusWrites remembers, per Job key, the resourceVersion of the last
// status this controller wrote. Until the Job informer has caught up with
// it, the cache shows counters from before the write while the pod cache
// may already show the counted pods without their finalizer: a sync then
// would count too few pods as done and create pods the Job no longer
// needs. Kubernetes narrows that window by delaying syncs (the batch
// period); this closes it.
type statusWrites struct {
	mu sync.Mutex
	m  map[string]writtenVersion
}

type writtenVersion struct {
	uid types.UID
	rv  uint64
}

func newStatusWrites() *statusWrites {
	return &statusWrites{m: map[string]writtenVersion{}}
}

func (w *statusWrites) record(key string, job *batchv1.Job) {
	rv, err := strconv.ParseUint(job.ResourceVersion, 10, 64)
	if err != nil {
		return // not a number: nothing to compare with
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[key] = writtenVersion{uid: job.UID, rv: rv}
}

// stale reports whether cached is older than the last status written for
// key. resourceVersions are opaque in the API, but Wharf's (and etcd's) are
// increasing revisions; any other form counts as caught up.
func (w *statusWrites) stale(key string, cached *batchv1.Job) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.m[key]
	if !ok {
		return false
	}
	rv, err := strconv.ParseUint(cached.ResourceVersion, 10, 64)
	if err != nil || cached.UID != last.uid || rv >= last.rv {
		delete(w.m, key)
		return false
	}
	return true
}

func (w *statusWrites) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// syncOrphanPod removes the tracking finalizer from a pod no Job will
// count: orphaned, or its Job gone or finished.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("pod key %q: %w", key, err)
	}
	pod, err := c.podLister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod %s: %w", key, err)
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if ref.Kind != controllerKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
			return nil // not a Job's: not ours to touch
		}
		if job := c.resolveControllerRef(pod.Namespace, ref); job != nil {
			if m := job.Spec.ManagedBy; m != nil && *m != batchv1.JobControllerName {
				return nil
			}
			if !isFinished(job) {
				return nil // adopted meanwhile: its Job counts it
			}
		}
	}
	if !hasTrackingFinalizer(pod) {
		return nil
	}
	if err := c.removeFinalizer(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func equalStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
