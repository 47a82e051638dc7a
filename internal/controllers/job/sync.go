package job

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// syncCtx is what one sync of one Job works out, passed between its steps.
type syncCtx struct {
	key  string
	job  *batchv1.Job // a copy the sync owns
	pods []*v1.Pod    // the Job's pods, from the cache: not modified
	// finished is the condition the Job is heading to (FailureTarget,
	// SuccessCriteriaMet, or the final Failed or Complete), nil if none.
	finished   *batchv1.JobCondition
	activePods []*v1.Pod
	succeeded  int32
	failed     int32
	// prevSucceededIndexes is status.completedIndexes; succeededIndexes
	// adds the pods that succeeded since (Indexed mode).
	prevSucceededIndexes intervals
	succeededIndexes     intervals
	failedIndexes        intervals // with backoffLimitPerIndex
	hasFailedIndexes     bool
	newBackoff           backoffRecord
	expectedRmFinalizers uidSet
	uncounted            uncounted
	// delayedDeletion holds, per index, the failed pod whose finalizer
	// stays until its replacement exists (backoffLimitPerIndex).
	delayedDeletion map[int]*v1.Pod
	terminating     int32
	ready           int32
}

// uncounted is status.uncountedTerminatedPods as sets.
type uncounted struct{ succeeded, failed uidSet }

func newUncounted(u *batchv1.UncountedTerminatedPods) uncounted {
	return uncounted{succeeded: newUIDSet(u.Succeeded...), failed: newUIDSet(u.Failed...)}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("job key %q: %w", key, err)
	}
	shared, err := c.jobLister.Jobs(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.Delete(key)
		c.finalizerExpectations.delete(key)
		c.backoff.remove(key)
		c.written.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get job %s: %w", key, err)
	}
	if c.written.stale(key, shared) {
		// The informer's update with our last write requeues the Job.
		c.logger.Debug("job cache older than the last status written, waiting", "job", key, "resourceVersion", shared.ResourceVersion)
		return nil
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != batchv1.JobControllerName {
		return nil // another controller's
	}
	if isFinished(shared) {
		c.backoff.remove(key)
		return nil
	}
	job := shared.DeepCopy()
	if job.Spec.Completions == nil && isIndexed(job) {
		// Validation requires completions in Indexed mode.
		return nil
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	// Read before listing pods: creations observed between the two would
	// otherwise look satisfied against a pod list that lacks them.
	satisfied := c.expectations.Satisfied(key)

	pods, err := c.podsForJob(ctx, job)
	if err != nil {
		return err
	}
	jc := &syncCtx{
		key:                  key,
		job:                  job,
		pods:                 pods,
		activePods:           controllerutil.FilterActivePods(pods),
		uncounted:            newUncounted(job.Status.UncountedTerminatedPods),
		expectedRmFinalizers: c.finalizerExpectations.expected(key),
		terminating:          int32(len(terminatingPods(pods))),
	}
	jc.ready = countReady(jc.activePods)
	active := int32(len(jc.activePods))
	newSucceeded, newFailed := newFinishedPods(jc)
	jc.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(len(jc.uncounted.succeeded))
	jc.failed = job.Status.Failed + countedFailures(job, newFailed) + int32(len(jc.uncounted.failed))

	// The first start; a suspended Job has not started.
	if job.Status.StartTime == nil && !isSuspended(job) {
		now := metav1.NewTime(c.clock.Now())
		job.Status.StartTime = &now
	}
	jc.newBackoff = c.backoff.newRecord(key, newSucceeded, newFailed)

	c.decideFinished(jc)

	var manageErr error
	var suspendEvent, suspendMessage string
	if jc.finished != nil {
		// Ending: delete what still runs, keeping the finalizers, which
		// trackStatus removes once the pods are counted.
		deletedReady, deleted, err := c.deleteActivePods(ctx, job, jc.activePods)
		if deleted != active || !satisfied {
			// Pods may be left, or in flight: not finished yet.
			jc.finished = nil
		}
		active -= deleted
		jc.terminating += deleted
		jc.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			active, manageErr = c.manageJob(ctx, jc)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			// A work queue: done once any pod succeeded and none runs.
			complete = jc.succeeded > 0 && active == 0
		} else {
			complete = jc.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			jc.finished = c.newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods")
		case managed:
			// Only a sync that managed the pods reports suspension: the
			// others may not have acted on it yet.
			suspendEvent, suspendMessage = c.updateSuspended(job)
		}
	}

	ready := jc.ready
	needsUpdate := suspendEvent != "" || active != job.Status.Active ||
		job.Status.Ready == nil || *job.Status.Ready != ready ||
		job.Status.Terminating == nil || *job.Status.Terminating != jc.terminating
	job.Status.Active = active
	job.Status.Ready = &ready
	terminating := jc.terminating
	job.Status.Terminating = &terminating
	if err := c.trackStatus(ctx, jc, needsUpdate); err != nil {
		return errors.Join(manageErr, fmt.Errorf("track status of job %s: %w", key, err))
	}
	if suspendEvent != "" {
		// After the write: a sync whose write conflicts does it again.
		c.recorder.Event(job, v1.EventTypeNormal, suspendEvent, suspendMessage)
	}
	return manageErr
}

// decideFinished sets jc.finished if the Job is done: success criteria met
// earlier, a failure decided earlier (FailureTarget), a FailJob rule, the
// backoff limit, the deadline, the per-index limits, or the success policy.
func (c *Controller) decideFinished(jc *syncCtx) {
	job := jc.job
	jc.finished = trueCondition(job, batchv1.JobSuccessCriteriaMet)
	// Once successful, a failure no longer counts.
	if jc.finished == nil {
		if target := trueCondition(job, batchv1.JobFailureTarget); target != nil {
			jc.finished = c.newCondition(batchv1.JobFailed, target.Reason, target.Message)
		} else if msg, ok := failJobMessage(job, jc.pods); ok {
			jc.finished = c.newCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, msg)
		}
	}
	if jc.finished == nil {
		switch {
		case jc.failed > *job.Spec.BackoffLimit || pastBackoffLimitOnFailure(job, jc.pods):
			jc.finished = c.newCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
		case c.pastActiveDeadline(job):
			jc.finished = c.newCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
		case job.Spec.ActiveDeadlineSeconds != nil && !isSuspended(job):
			left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - c.clock.Since(job.Status.StartTime.Time)
			c.queue.AddAfter(jc.key, left)
		}
	}
	if !isIndexed(job) {
		return
	}
	jc.prevSucceededIndexes, jc.succeededIndexes = succeededIndexes(job, jc.pods)
	jc.succeeded = int32(jc.succeededIndexes.total())
	if hasBackoffLimitPerIndex(job) {
		jc.failedIndexes, jc.hasFailedIndexes = failedIndexes(job, jc.pods), true
		if jc.finished == nil {
			failed := jc.failedIndexes.total()
			switch {
			case job.Spec.MaxFailedIndexes != nil && failed > int(*job.Spec.MaxFailedIndexes):
				jc.finished = c.newCondition(batchv1.JobFailureTarget, batchv1.JobReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes")
			case failed > 0 && failed+jc.succeededIndexes.total() >= int(*job.Spec.Completions):
				jc.finished = c.newCondition(batchv1.JobFailureTarget, batchv1.JobReasonFailedIndexes, "Job has failed indexes")
			}
		}
		jc.delayedDeletion = podsWithDelayedDeletion(jc)
	}
	if jc.finished == nil {
		if msg, ok := matchSuccessPolicy(job.Spec.SuccessPolicy, *job.Spec.Completions, jc.succeededIndexes); ok {
			jc.finished = c.newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonSuccessPolicy, msg)
		}
	}
}

// updateSuspended keeps the Suspended condition in line with spec.suspend
// and returns the event to record once the status is written ("" if the
// condition did not change). Resuming restarts the clock of
// activeDeadlineSeconds, which counts continuous activity.
func (c *Controller) updateSuspended(job *batchv1.Job) (reason, message string) {
	if isSuspended(job) {
		if c.ensureCondition(job, batchv1.JobSuspended, v1.ConditionTrue, "JobSuspended", "Job suspended") {
			return reasonSuspended, "Job suspended"
		}
		return "", ""
	}
	if !c.ensureCondition(job, batchv1.JobSuspended, v1.ConditionFalse, "JobResumed", "Job resumed") {
		return "", ""
	}
	now := metav1.NewTime(c.clock.Now())
	job.Status.StartTime = &now
	return reasonResumed, "Job resumed"
}

// podsForJob returns the pods the Job controls, adopting matching orphans
// (with the tracking finalizer) and releasing owned pods that stopped
// matching. The pods are the cache's; adopted ones are copies that show the
// finalizer the adoption added.
func (c *Controller) podsForJob(ctx context.Context, job *batchv1.Job) ([]*v1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	// All pods, not only matching ones: owned pods that stopped matching
	// must be seen to be released.
	all, err := c.podLister.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods for job %s/%s: %w", job.Namespace, job.Name, err)
	}
	claimer := &controllerutil.Claimer{
		Owner:    job,
		OwnerGVK: controllerKind,
		Selector: selector,
		CanAdopt: controllerutil.RecheckDeletion(job, func(ctx context.Context) (metav1.Object, error) {
			return c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		}),
		Patch:           c.pods.PatchPod,
		AdoptFinalizers: []string{batchv1.JobTrackingFinalizer},
	}
	pods, err := controllerutil.ClaimAll(ctx, claimer, all)
	if err != nil {
		return nil, fmt.Errorf("claim pods for job %s/%s: %w", job.Namespace, job.Name, err)
	}
	for i, p := range pods {
		if !metav1.IsControlledBy(p, job) && !hasTrackingFinalizer(p) {
			adopted := p.DeepCopy()
			adopted.Finalizers = append(adopted.Finalizers, batchv1.JobTrackingFinalizer)
			pods[i] = adopted
		}
	}
	return pods, nil
}

// manageJob creates or deletes pods to have the right number running, and
// returns how many are active after it. It creates nothing while the
// failure back-off runs, and either creates or deletes in one sync, never
// both. jc.activePods is not modified.
func (c *Controller) manageJob(ctx context.Context, jc *syncCtx) (int32, error) {
	job := jc.job
	active := int32(len(jc.activePods))
	if isSuspended(job) {
		rm := activePodsForRemoval(job, jc.activePods, len(jc.activePods))
		removedReady, removed, err := c.deleteJobPods(ctx, jc, rm)
		jc.terminating += removed
		jc.ready -= removedReady
		return active - removed, err
	}

	parallelism := *job.Spec.Parallelism
	var want int32
	switch {
	case job.Spec.Completions == nil && jc.succeeded > 0:
		// A work queue with a success: let what runs finish, start nothing.
		want = active
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = max(0, min(*job.Spec.Completions-jc.succeeded, parallelism))
	}

	rm := activePodsForRemoval(job, jc.activePods, int(max(0, active-want)))
	if len(rm) > maxPodCreateDeletePerSync {
		rm = rm[:maxPodCreateDeletePerSync]
	}
	if len(rm) > 0 {
		c.logger.Debug("too many pods running", "job", jc.key, "deleting", len(rm), "want", want)
		removedReady, removed, err := c.deleteJobPods(ctx, jc, rm)
		jc.terminating += removed
		jc.ready -= removedReady
		return active - removed, err
	}

	var terminating int32
	if onlyReplaceFailedPods(job) {
		terminating = jc.terminating
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if !hasBackoffLimitPerIndex(job) {
		if left := jc.newBackoff.remainingTime(c.clock, c.backoffBase, c.backoffMax); left > 0 {
			c.enqueueAfter(job, max(left, c.batchPeriod))
			return active, nil
		}
	}
	diff = min(diff, maxPodCreateDeletePerSync)
	var indexes []int
	if isIndexed(job) {
		indexes = pendingIndexes(jc, int(diff), int(*job.Spec.Completions))
		if hasBackoffLimitPerIndex(job) {
			var left time.Duration
			indexes, left = c.indexesReadyToCreate(indexes, jc.delayedDeletion)
			if left > 0 {
				c.enqueueAfter(job, max(left, c.batchPeriod))
				return active, nil
			}
		}
		diff = int32(len(indexes))
	}
	if diff == 0 {
		return active, nil
	}
	c.logger.Debug("too few pods running", "job", jc.key, "want", want, "creating", diff)
	created, err := c.createPods(ctx, jc, int(diff), indexes)
	return active + int32(created), err
}

// createPods creates n pods (for indexes, if given) in slow-start batches
// and returns how many were created.
func (c *Controller) createPods(ctx context.Context, jc *syncCtx, n int, indexes []int) (int, error) {
	job := jc.job
	template := podTemplate(job)
	// Expect all creations before issuing any, so an informer event
	// arriving mid-batch is accounted for.
	c.expectations.ExpectCreations(jc.key, n)
	var created atomic.Int32
	var firstErr error
	next := 0
	for batch := min(n, slowStartInitialBatch); next < n; batch = min(2*batch, n-next) {
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		for i := next; i < next+batch; i++ {
			t, generateName := template, ""
			if indexes != nil {
				ix := indexes[i]
				t = template.DeepCopy()
				setCompletionIndex(t, job.Name, ix)
				generateName = generateNameWithIndex(job.Name, ix)
				if hasBackoffLimitPerIndex(job) {
					count, ignored := newIndexFailureCounts(job, jc.delayedDeletion[ix])
					t.Annotations[batchv1.JobIndexFailureCountAnnotation] = fmt.Sprint(count)
					if ignored > 0 {
						t.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = fmt.Sprint(ignored)
					}
				}
			}
			wg.Go(func() {
				if err := c.createPod(ctx, job, t, generateName); err != nil {
					// This creation will never be observed.
					c.expectations.CreationObserved(jc.key)
					errCh <- err
					return
				}
				created.Add(1)
			})
		}
		wg.Wait()
		close(errCh)
		next += batch
		if err, failed := <-errCh; failed {
			firstErr = err
			// Creations never attempted will never be observed either.
			for range n - next {
				c.expectations.CreationObserved(jc.key)
			}
			break
		}
	}
	return int(created.Load()), firstErr
}

// indexesReadyToCreate returns those of indexes whose per-index back-off
// has passed; if none, the shortest time left.
func (c *Controller) indexesReadyToCreate(indexes []int, delayed map[int]*v1.Pod) ([]int, time.Duration) {
	var ready []int
	var soonest time.Duration
	for _, ix := range indexes {
		left := remainingBackoffPerIndex(c.clock, c.backoffBase, c.backoffMax, delayed[ix])
		switch {
		case left == 0:
			ready = append(ready, ix)
		case soonest == 0 || left < soonest:
			soonest = left
		}
	}
	if len(ready) > 0 {
		return ready, 0
	}
	return nil, soonest
}

// deleteJobPods removes the tracking finalizer of pods and deletes them:
// pods the Job no longer wants (suspension, lower parallelism) are not
// counted as failures. It returns how many of the deleted pods were ready
// and how many were deleted.
func (c *Controller) deleteJobPods(ctx context.Context, jc *syncCtx, pods []*v1.Pod) (int32, int32, error) {
	podKeys := make([]string, len(pods))
	for i, p := range pods {
		podKeys[i] = keyOf(p.Namespace, p.Name)
	}
	c.expectations.ExpectDeletions(jc.key, podKeys)
	var deleted, deletedReady atomic.Int32
	errCh := make(chan error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			fail := func(err error) {
				// This deletion will never be observed.
				c.expectations.DeletionObserved(jc.key, podKeys[i])
				if !apierrors.IsNotFound(err) {
					errCh <- err
				}
			}
			if hasTrackingFinalizer(pod) {
				if err := c.removeFinalizer(ctx, pod); err != nil {
					fail(err)
					return
				}
			}
			if err := c.pods.DeletePod(ctx, jc.job, pod); err != nil {
				fail(err)
				if !apierrors.IsNotFound(err) {
					return
				}
			}
			deleted.Add(1)
			if controllerutil.IsPodReady(pod) {
				deletedReady.Add(1)
			}
		})
	}
	wg.Wait()
	close(errCh)
	return deletedReady.Load(), deleted.Load(), <-errCh
}

// deleteActivePods deletes the pods of a Job that is ending, keeping their
// finalizers (trackStatus counts the pods, then removes them). It returns
// how many of the deleted pods were ready and how many were deleted.
func (c *Controller) deleteActivePods(ctx context.Context, job *batchv1.Job, pods []*v1.Pod) (int32, int32, error) {
	var deleted, deletedReady atomic.Int32
	errCh := make(chan error, len(pods))
	var wg sync.WaitGroup
	for _, pod := range pods {
		wg.Go(func() {
			if err := c.pods.DeletePod(ctx, job, pod); err != nil && !apierrors.IsNotFound(err) {
				errCh <- err
				return
			}
			deleted.Add(1)
			if controllerutil.IsPodReady(pod) {
				deletedReady.Add(1)
			}
		})
	}
	wg.Wait()
	close(errCh)
	return deletedReady.Load(), deleted.Load(), <-errCh
}

// newFinishedPods returns the pods that succeeded and failed and are not
// counted yet: they still have the tracking finalizer, are not in
// status.uncountedTerminatedPods, and, in Indexed mode, have a valid index.
func newFinishedPods(jc *syncCtx) (succeeded, failed []*v1.Pod) {
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) || jc.expectedRmFinalizers.has(p.UID) {
			continue
		}
		if isIndexed(jc.job) && !validIndex(jc.job, p) {
			continue
		}
		switch {
		case p.Status.Phase == v1.PodSucceeded && !jc.uncounted.succeeded.has(p.UID):
			succeeded = append(succeeded, p)
		case isPodFailed(p, jc.job) && !jc.uncounted.failed.has(p.UID):
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// countedFailures is how many of failed count toward the backoff limit:
// all but those an Ignore rule matches.
func countedFailures(job *batchv1.Job, failed []*v1.Pod) int32 {
	n := int32(len(failed))
	if job.Spec.PodFailurePolicy == nil {
		return n
	}
	for _, p := range failed {
		if !matchPodFailurePolicy(job.Spec.PodFailurePolicy, p).count {
			n--
		}
	}
	return n
}

// failJobMessage returns the message of the first FailJob rule a failed pod
// matches.
func failJobMessage(job *batchv1.Job, pods []*v1.Pod) (string, bool) {
	if job.Spec.PodFailurePolicy == nil {
		return "", false
	}
	for _, p := range pods {
		if !isPodFailed(p, job) {
			continue
		}
		if m := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); m.action == batchv1.PodFailurePolicyActionFailJob {
			return m.failJobMessage, true
		}
	}
	return "", false
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure failed containers
// restart in place, so their restarts count as the pod failures.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*v1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != v1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != v1.PodRunning && p.Status.Phase != v1.PodPending {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	if *job.Spec.BackoffLimit == 0 {
		return restarts > 0
	}
	return restarts >= *job.Spec.BackoffLimit
}

// pastActiveDeadline: the Job has been active activeDeadlineSeconds; a
// suspended Job never is.
func (c *Controller) pastActiveDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || isSuspended(job) {
		return false
	}
	return c.clock.Since(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

func isSuspended(job *batchv1.Job) bool {
	return job.Spec.Suspend != nil && *job.Spec.Suspend
}
