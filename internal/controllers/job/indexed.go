package job

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

const (
	completionIndexEnvName = "JOB_COMPLETION_INDEX"
	unknownIndex           = -1
	// maxGeneratedNameLength is how much of generateName the API server
	// keeps before appending 5 random characters (names.MaxGeneratedNameLength).
	maxGeneratedNameLength = 63 - 5
)

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// hasBackoffLimitPerIndex: validation allows it only in Indexed mode.
func hasBackoffLimitPerIndex(job *batchv1.Job) bool {
	return job.Spec.BackoffLimitPerIndex != nil
}

// interval is the indexes first to last, inclusive.
type interval struct{ first, last int }

// intervals is a set of indexes in the compressed form of
// status.completedIndexes: ordered, disjoint and not adjacent.
type intervals []interval

// parseIntervals reads "1,3-5,7" (indexes at or past completions are
// dropped). A corrupt interval is skipped and the rest put in order: the
// status is the controller's, and a bad write must not stop it.
func parseIntervals(s string, completions int) intervals {
	if s == "" {
		return nil
	}
	var parsed intervals
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 || first >= completions {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
			last = min(last, completions-1)
		}
		parsed = append(parsed, interval{first, last})
	}
	sort.Slice(parsed, func(i, j int) bool { return parsed[i].first < parsed[j].first })
	return intervals(nil).merge(parsed)
}

// String is the compressed form: "1,3-5,7"; two adjacent indexes are
// written "1,2", as Kubernetes does.
func (iv intervals) String() string {
	var b strings.Builder
	for _, v := range iv {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(v.first))
		switch {
		case v.last == v.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(v.last))
		case v.last > v.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(v.last))
		}
	}
	return b.String()
}

// total is how many indexes iv holds.
func (iv intervals) total() int {
	n := 0
	for _, v := range iv {
		n += v.last - v.first + 1
	}
	return n
}

// has reports whether ix is in iv.
func (iv intervals) has(ix int) bool {
	i := sort.Search(len(iv), func(i int) bool { return iv[i].last >= ix })
	return i < len(iv) && iv[i].first <= ix
}

// withIndexes returns iv with the indexes added; indexes must be sorted.
func (iv intervals) withIndexes(indexes []int) intervals {
	add := make(intervals, len(indexes))
	for i, ix := range indexes {
		add[i] = interval{ix, ix}
	}
	return iv.merge(add)
}

// merge returns the union of iv and o.
func (iv intervals) merge(o intervals) intervals {
	var out intervals
	appendOne := func(v interval) {
		if n := len(out); n > 0 && out[n-1].last+1 >= v.first {
			out[n-1].last = max(out[n-1].last, v.last)
			return
		}
		out = append(out, v)
	}
	i, j := 0, 0
	for i < len(iv) && j < len(o) {
		if iv[i].first < o[j].first {
			appendOne(iv[i])
			i++
		} else {
			appendOne(o[j])
			j++
		}
	}
	for ; i < len(iv); i++ {
		appendOne(iv[i])
	}
	for ; j < len(o); j++ {
		appendOne(o[j])
	}
	return out
}

// completionIndex is the pod's batch.kubernetes.io/job-completion-index
// annotation, or unknownIndex.
func completionIndex(pod *v1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return unknownIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return unknownIndex
	}
	return i
}

// validIndex reports whether pod has an index the Job counts.
func validIndex(job *batchv1.Job, pod *v1.Pod) bool {
	ix := completionIndex(pod)
	return ix != unknownIndex && ix < int(*job.Spec.Completions)
}

// succeededIndexes returns status.completedIndexes, and the same with the
// indexes of the succeeded pods not yet counted (those still having the
// tracking finalizer).
func succeededIndexes(job *batchv1.Job, pods []*v1.Pod) (prev, cur intervals) {
	prev = parseIntervals(job.Status.CompletedIndexes, int(*job.Spec.Completions))
	var added []int
	for _, p := range pods {
		if p.Status.Phase == v1.PodSucceeded && validIndex(job, p) && hasTrackingFinalizer(p) {
			added = append(added, completionIndex(p))
		}
	}
	slices.Sort(added)
	return prev, prev.withIndexes(slices.Compact(added))
}

// failedIndexes returns status.failedIndexes with the indexes that failed
// for good since (backoffLimitPerIndex).
func failedIndexes(job *batchv1.Job, pods []*v1.Pod) intervals {
	var prev intervals
	if job.Status.FailedIndexes != nil {
		prev = parseIntervals(*job.Status.FailedIndexes, int(*job.Spec.Completions))
	}
	var added []int
	for _, p := range pods {
		if validIndex(job, p) && hasTrackingFinalizer(p) && indexFailed(job, p) {
			added = append(added, completionIndex(p))
		}
	}
	slices.Sort(added)
	return prev.withIndexes(slices.Compact(added))
}

// indexFailed: pod's failure fails its index, by a FailIndex rule or by
// exhausting backoffLimitPerIndex.
func indexFailed(job *batchv1.Job, pod *v1.Pod) bool {
	if !isPodFailed(pod, job) {
		return false
	}
	counted := true
	if job.Spec.PodFailurePolicy != nil {
		m := matchPodFailurePolicy(job.Spec.PodFailurePolicy, pod)
		if m.action == batchv1.PodFailurePolicyActionFailIndex {
			return true
		}
		counted = m.count
	}
	return counted && indexFailureCount(pod) >= *job.Spec.BackoffLimitPerIndex
}

// pendingIndexes returns up to count indexes below completions that no
// active pod runs and that have not succeeded or failed; with
// podReplacementPolicy Failed, not those of terminating pods either.
func pendingIndexes(jc *syncCtx, count, completions int) []int {
	if count == 0 {
		return nil
	}
	busy := jc.succeededIndexes.withIndexes(indexesOf(jc.activePods))
	if onlyReplaceFailedPods(jc.job) {
		busy = busy.withIndexes(indexesOf(terminatingPods(jc.pods)))
	}
	busy = busy.merge(jc.failedIndexes)
	out := make([]int, 0, count)
	next := 0
	for _, v := range busy {
		for ; next < completions && len(out) < count && next < v.first; next++ {
			out = append(out, next)
		}
		next = max(next, v.last+1)
	}
	for ; next < completions && len(out) < count; next++ {
		out = append(out, next)
	}
	return out
}

// indexesOf returns the sorted, distinct indexes of pods.
func indexesOf(pods []*v1.Pod) []int {
	var out []int
	for _, p := range pods {
		if ix := completionIndex(p); ix != unknownIndex {
			out = append(out, ix)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// duplicateIndexPods splits active pods: those to remove (no index, an
// index past completions, or all but the best of pods sharing an index) and
// those to keep.
func duplicateIndexPods(pods []*v1.Pod, completions int) (rm, keep []*v1.Pod) {
	byIndex := map[int][]*v1.Pod{}
	for _, p := range pods {
		ix := completionIndex(p)
		if ix == unknownIndex || ix >= completions {
			rm = append(rm, p)
			continue
		}
		byIndex[ix] = append(byIndex[ix], p)
	}
	indexes := make([]int, 0, len(byIndex))
	for ix := range byIndex {
		indexes = append(indexes, ix)
	}
	slices.Sort(indexes)
	for _, ix := range indexes {
		same := byIndex[ix]
		sortForRemoval(same)
		rm = append(rm, same[:len(same)-1]...)
		keep = append(keep, same[len(same)-1])
	}
	return rm, keep
}

// podsWithDelayedDeletion returns, per index, the failed pod whose
// finalizer stays until its replacement exists (backoffLimitPerIndex): the
// replacement inherits its failure count, which only the pod holds.
func podsWithDelayedDeletion(jc *syncCtx) map[int]*v1.Pod {
	active := map[int]bool{}
	for _, ix := range indexesOf(jc.activePods) {
		active[ix] = true
	}
	out := map[int]*v1.Pod{}
	for _, p := range jc.pods {
		if !hasTrackingFinalizer(p) || jc.expectedRmFinalizers.has(p.UID) || !validIndex(jc.job, p) || !isPodFailed(p, jc.job) {
			continue
		}
		ix := completionIndex(p)
		if jc.succeededIndexes.has(ix) || jc.failedIndexes.has(ix) || active[ix] {
			continue
		}
		last, ok := out[ix]
		if !ok || (absoluteIndexFailureCount(last) <= absoluteIndexFailureCount(p) && !finishedTime(p).Before(finishedTime(last))) {
			out[ix] = p
		}
	}
	return out
}

// newIndexFailureCounts returns the failure counts (counted, ignored) the
// replacement of replaced starts with.
func newIndexFailureCounts(job *batchv1.Job, replaced *v1.Pod) (count, ignored int32) {
	if replaced == nil {
		return 0, 0
	}
	count, ignored = indexFailureCount(replaced), indexIgnoredFailureCount(replaced)
	if job.Spec.PodFailurePolicy != nil && !matchPodFailurePolicy(job.Spec.PodFailurePolicy, replaced).count {
		return count, ignored + 1
	}
	return count + 1, ignored
}

func indexFailureCount(pod *v1.Pod) int32 {
	return annotationInt32(pod, batchv1.JobIndexFailureCountAnnotation)
}

func indexIgnoredFailureCount(pod *v1.Pod) int32 {
	return annotationInt32(pod, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

func absoluteIndexFailureCount(pod *v1.Pod) int32 {
	return indexFailureCount(pod) + indexIgnoredFailureCount(pod)
}

// annotationInt32 is the annotation as a non-negative int32, 0 if absent
// or invalid (a user may have written anything).
func annotationInt32(pod *v1.Pod, key string) int32 {
	n, err := strconv.Atoi(pod.Annotations[key])
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int32(n)
}

// addCompletionIndexEnv gives every container JOB_COMPLETION_INDEX from the
// pod's index label (through the downward API), unless it sets it itself.
func addCompletionIndexEnv(t *v1.PodTemplateSpec) {
	add := func(c *v1.Container) {
		for _, e := range c.Env {
			if e.Name == completionIndexEnvName {
				return
			}
		}
		c.Env = append(c.Env, v1.EnvVar{
			Name: completionIndexEnvName,
			ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{
				FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation),
			}},
		})
	}
	for i := range t.Spec.InitContainers {
		add(&t.Spec.InitContainers[i])
	}
	for i := range t.Spec.Containers {
		add(&t.Spec.Containers[i])
	}
}

// setCompletionIndex marks t as the pod of index ix: annotation and label
// (the same key), and the hostname <job>-<ix>, which a headless Service
// named in subdomain turns into a stable DNS name.
func setCompletionIndex(t *v1.PodTemplateSpec, jobName string, ix int) {
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Annotations[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(ix)
	t.Labels[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(ix)
	t.Spec.Hostname = fmt.Sprintf("%s-%d", jobName, ix)
}

// generateNameWithIndex is "<job>-<ix>-", the job name cut if needed.
func generateNameWithIndex(jobName string, ix int) string {
	suffix := "-" + strconv.Itoa(ix) + "-"
	prefix := jobName + suffix
	if len(prefix) > maxGeneratedNameLength {
		prefix = prefix[:maxGeneratedNameLength-len(suffix)] + suffix
	}
	return prefix
}

// sortByIndex orders pods by completion index, unknown first.
func sortByIndex(pods []*v1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return completionIndex(pods[i]) < completionIndex(pods[j]) })
}
