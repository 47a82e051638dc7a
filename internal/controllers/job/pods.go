package job

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Event reasons, as Kubernetes' job controller and its PodControl record
// them.
const (
	reasonCompleted        = "Completed"
	reasonSuspended        = "Suspended"
	reasonResumed          = "Resumed"
	reasonTooManySucceeded = "TooManySucceededPods"
)

func hasTrackingFinalizer(pod *v1.Pod) bool {
	return slices.Contains(pod.Finalizers, batchv1.JobTrackingFinalizer)
}

// removeFinalizerPatch is the strategic merge patch that removes the
// tracking finalizer and no other.
func removeFinalizerPatch() []byte {
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer}},
	})
	return b
}

func (c *Controller) removeFinalizer(ctx context.Context, pod *v1.Pod) error {
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, removeFinalizerPatch(), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("remove tracking finalizer of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// podTemplate is the template the Job's new pods start from: the Job's,
// with the tracking finalizer, and in Indexed mode JOB_COMPLETION_INDEX.
func podTemplate(job *batchv1.Job) *v1.PodTemplateSpec {
	t := job.Spec.Template.DeepCopy()
	if isIndexed(job) {
		addCompletionIndexEnv(t)
	}
	if !slices.Contains(t.Finalizers, batchv1.JobTrackingFinalizer) {
		t.Finalizers = append(t.Finalizers, batchv1.JobTrackingFinalizer)
	}
	return t
}

// createPod creates a pod of job from t; generateName "" means the default
// prefix. A namespace being deleted refuses it, which is no failure.
func (c *Controller) createPod(ctx context.Context, job *batchv1.Job, t *v1.PodTemplateSpec, generateName string) error {
	if generateName == "" {
		generateName = controllerutil.PodNamePrefix(job.Name)
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       job.Namespace,
			GenerateName:    generateName,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, controllerKind)},
		},
		Spec: t.Spec,
	}
	return c.pods.CreatePod(ctx, job, pod)
}

// activePodsForRemoval returns the active pods to delete: in Indexed mode
// those with a missing, out-of-range or repeated index, then as many more
// of the least advanced as needed to remove at least rmAtLeast.
func activePodsForRemoval(job *batchv1.Job, pods []*v1.Pod, rmAtLeast int) []*v1.Pod {
	var rm, left []*v1.Pod
	if isIndexed(job) {
		rm, left = duplicateIndexPods(pods, int(*job.Spec.Completions))
	} else {
		left = slices.Clone(pods)
	}
	if len(rm) < rmAtLeast {
		sortForRemoval(left)
		rm = append(rm, left[:rmAtLeast-len(rm)]...)
	}
	return rm
}

var phaseRank = map[v1.PodPhase]int{v1.PodPending: 0, v1.PodUnknown: 1, v1.PodRunning: 2}

// sortForRemoval orders pods least advanced first, as Kubernetes'
// controller.ActivePods: unscheduled, pending < unknown < running, not
// ready, ready for less time, more restarts, newer.
func sortForRemoval(pods []*v1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if ra, rb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; ra != rb {
			return ra < rb
		}
		readyA, readyB := controllerutil.IsPodReady(a), controllerutil.IsPodReady(b)
		if readyA != readyB {
			return !readyA
		}
		if readyA {
			if ta, tb := readySince(a), readySince(b); !ta.Equal(tb) {
				return afterOrZero(ta, tb)
			}
		}
		if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
			return ra > rb
		}
		if ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time; !ta.Equal(tb) {
			return afterOrZero(ta, tb)
		}
		return false
	})
}

// afterOrZero orders a zero time first, then later times first.
func afterOrZero(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b)
}

func readySince(pod *v1.Pod) time.Time {
	if c := controllerutil.PodReadyCondition(&pod.Status); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func maxRestarts(pod *v1.Pod) int32 {
	var m int32
	for _, cs := range pod.Status.ContainerStatuses {
		m = max(m, cs.RestartCount)
	}
	return m
}

// terminatingPods are the pods being deleted that have not finished.
func terminatingPods(pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, p := range pods {
		if isTerminating(p) {
			out = append(out, p)
		}
	}
	return out
}

func isTerminating(p *v1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed
}

func countReady(pods []*v1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if controllerutil.IsPodReady(p) {
			n++
		}
	}
	return n
}

// onlyReplaceFailedPods: podReplacementPolicy Failed (always so with a pod
// failure policy) waits for a deleted pod to be gone before replacing it.
func onlyReplaceFailedPods(job *batchv1.Job) bool {
	if p := job.Spec.PodReplacementPolicy; p != nil && *p == batchv1.Failed {
		return true
	}
	return job.Spec.PodFailurePolicy != nil
}

// isPodFailed: the pod failed, or, unless only failed pods are replaced,
// is being deleted without having succeeded (an orphan whose node went
// away never reaches Failed).
func isPodFailed(p *v1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == v1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != v1.PodSucceeded
}
