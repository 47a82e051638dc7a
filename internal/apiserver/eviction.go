package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"

	"wharf.dev/wharf/internal/storage"
)

// The eviction subresource, as Kubernetes' registry/core/pod/storage/eviction.go:
// a pod covered by a PodDisruptionBudget goes only if the budget allows
// one more disruption, which the eviction takes from it (disruptionsAllowed
// minus one, the pod recorded in disruptedPods) before deleting the pod.

// maxDisruptedPods caps a budget's disruptedPods: past it, evictions the
// disruption controller has not seen through yet are too many to add to.
const maxDisruptedPods = 2000

// evictionRetry paces the retries of an eviction whose pod changed
// between its read and its deletion.
var evictionRetry = wait.Backoff{Steps: 20, Duration: 500 * time.Millisecond, Factor: 1.0, Jitter: 0.1}

var pdbGVR = policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets")

// handleEviction serves pods/{name}/eviction.
func (s *Server) handleEviction(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.gvr.Resource != "pods" || req.verb != "create" {
		return errNotFoundPath(r.URL.Path)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	ev := &policyv1.Eviction{}
	if err := s.decodeBody(w, r, data, ev, policyv1.SchemeGroupVersion.WithKind("Eviction")); err != nil {
		return err
	}
	if ev.Name != req.name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	opts, err := evictionDeleteOptions(ev, r.URL.Query()["dryRun"])
	if err != nil {
		return err
	}
	if err := s.evict(ctx, r, req, opts); err != nil {
		return err
	}
	st := &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
	st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
	writeJSON(w, http.StatusCreated, st)
	return nil
}

// evictionDeleteOptions are the eviction's DeleteOptions with the
// request's dryRun, which must agree with theirs if both say.
func evictionDeleteOptions(ev *policyv1.Eviction, queryDryRun []string) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	if ev.DeleteOptions != nil {
		opts = ev.DeleteOptions.DeepCopy()
	}
	switch {
	case len(opts.DryRun) == 0:
		opts.DryRun = queryDryRun
	case len(queryDryRun) > 0 && !reflect.DeepEqual(opts.DryRun, queryDryRun):
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Non-matching dry-run options in request and content: %v and %v", queryDryRun, opts.DryRun))
	}
	return opts, nil
}

func isDryRun(opts *metav1.DeleteOptions) bool { return slices.Contains(opts.DryRun, metav1.DryRunAll) }

func rvUnset(opts *metav1.DeleteOptions) bool {
	return opts.Preconditions == nil || opts.Preconditions.ResourceVersion == nil
}

// withRV returns opts with a resourceVersion precondition.
func withRV(opts *metav1.DeleteOptions, rv string) *metav1.DeleteOptions {
	opts = opts.DeepCopy()
	if opts.Preconditions == nil {
		opts.Preconditions = &metav1.Preconditions{}
	}
	opts.Preconditions.ResourceVersion = &rv
	return opts
}

// evict deletes the pod if its disruption budget (if any) allows it.
func (s *Server) evict(ctx context.Context, r *http.Request, req *request, opts *metav1.DeleteOptions) error {
	var pod *corev1.Pod
	deleted := false
	retryable := apierrors.IsConflict
	if !rvUnset(opts) {
		// The client's own resourceVersion precondition: no retry can meet it.
		retryable = func(error) bool { return false }
	}
	err := retry.OnError(evictionRetry, func(err error) bool { return retryable(toStatus(err, req)) }, func() error {
		obj, err := s.store.Get(ctx, req.key(), "")
		if err != nil {
			return err
		}
		pod = obj.(*corev1.Pod)
		if !budgetIgnored(pod) {
			return nil
		}
		// A pod that is terminal, pending or already going has disrupted
		// nothing a budget counts: delete it, unless it changed meanwhile.
		del := opts
		if enforceRV(pod) && rvUnset(opts) {
			del = withRV(opts, pod.ResourceVersion)
		}
		if err := s.markAndDelete(ctx, r, req, del); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil || deleted {
		return err
	}

	pdbs, err := s.budgetsFor(ctx, pod)
	if err != nil {
		return err
	}
	if len(pdbs) > 1 {
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusInternalServerError,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
		}}
	}
	unhealthyAllowed := false
	pdbName := ""
	if len(pdbs) == 1 {
		pdb := pdbs[0]
		pdbName = pdb.Name
		unhealthyAllowed = !podReady(pod) && unhealthyEvictable(pdb)
		if !unhealthyAllowed {
			if err := s.takeDisruption(ctx, r, pdb, pod.Name, isDryRun(opts)); err != nil {
				return err
			}
		}
	}
	del := opts
	if unhealthyAllowed {
		// Not counted against the budget: only as long as the pod stays
		// as it was (not Ready).
		del = withRV(opts, pod.ResourceVersion)
	}
	err = s.markAndDelete(ctx, r, req, del)
	if err != nil && unhealthyAllowed && rvUnset(opts) && apierrors.IsConflict(toStatus(err, req)) {
		return budgetBusy(pdbName)
	}
	return err
}

// budgetIgnored: a terminal, pending or terminating pod is deleted without
// looking at budgets.
func budgetIgnored(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// enforceRV: deleting pod must not race with it becoming Ready.
func enforceRV(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return false
	}
	return pod.DeletionTimestamp == nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unhealthyEvictable: a budget lets an unhealthy (not Ready) pod go without
// counting it, always with AlwaysAllow, with IfHealthyBudget (the default)
// only while the budget has the healthy pods it wants.
func unhealthyEvictable(pdb *policyv1.PodDisruptionBudget) bool {
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
		return true
	}
	return pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0
}

// budgetsFor returns the budgets of pod's namespace selecting it. Unlike
// the disruption controller, an empty selector selects nothing here, as in
// Kubernetes.
func (s *Server) budgetsFor(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	objs, err := storeObjects{s}.List(ctx, pdbGVR, pod.Namespace)
	if err != nil {
		return nil, fmt.Errorf("list disruption budgets of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var out []*policyv1.PodDisruptionBudget
	for _, obj := range objs {
		pdb := obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	return out, nil
}

// takeDisruption takes one disruption from the budget, recording pod in
// its disruptedPods. The check and the write are one compare-and-swap on
// the budget's latest state: two evictions never take the same disruption.
func (s *Server) takeDisruption(ctx context.Context, r *http.Request, pdb *policyv1.PodDisruptionBudget, pod string, dry bool) error {
	if dry {
		return checkBudget(pdb)
	}
	res, ok := s.reg.Get(pdbGVR)
	if !ok {
		return fmt.Errorf("take a disruption from %s/%s: %s not served", pdb.Namespace, pdb.Name, pdbGVR)
	}
	preq := &request{verb: "update", gvr: pdbGVR, namespace: pdb.Namespace, name: pdb.Name, subresource: "status", res: res}
	_, err := s.updateWith(ctx, r, preq, statusWrite, false, func(cur runtime.Object) (runtime.Object, error) {
		out := cur.(*policyv1.PodDisruptionBudget)
		if out.UID != pdb.UID {
			return nil, budgetBusy(pdb.Name) // deleted and created again meanwhile
		}
		if err := checkBudget(out); err != nil {
			return nil, err
		}
		out.Status.DisruptionsAllowed--
		if out.Status.DisruptionsAllowed == 0 {
			pdbhelper.UpdateDisruptionAllowedCondition(out)
		}
		if out.Status.DisruptedPods == nil {
			out.Status.DisruptedPods = map[string]metav1.Time{}
		}
		// The disruption controller stops counting the pod as healthy
		// until it is gone, or for two minutes if it never goes.
		out.Status.DisruptedPods[pod] = metav1.Now()
		return out, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return budgetBusy(pdb.Name)
	}
	return err
}

// checkBudget refuses a disruption the budget does not allow now.
func checkBudget(pdb *policyv1.PodDisruptionBudget) error {
	gr := policyv1.Resource("poddisruptionbudget")
	switch {
	case pdb.Status.ObservedGeneration < pdb.Generation:
		return budgetBusy(pdb.Name)
	case pdb.Status.DisruptionsAllowed < 0:
		return apierrors.NewForbidden(gr, pdb.Name, errors.New("pdb disruptions allowed is negative"))
	case len(pdb.Status.DisruptedPods) > maxDisruptedPods:
		return apierrors.NewForbidden(gr, pdb.Name, errors.New("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	case pdb.Status.DisruptionsAllowed == 0:
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy),
		})
		return err
	}
	return nil
}

// budgetBusy: the budget's status is behind its spec (or the pod changed
// under an eviction): try again shortly.
func budgetBusy(name string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    policyv1.DisruptionBudgetCause,
		Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", name),
	})
	return err
}

// markAndDelete sets the pod's DisruptionTarget condition (unless a dry
// run) and deletes it with opts. The condition write changes the pod's
// resourceVersion: a precondition on it moves to the new one.
func (s *Server) markAndDelete(ctx context.Context, r *http.Request, req *request, opts *metav1.DeleteOptions) error {
	if !isDryRun(opts) {
		sreq := *req
		sreq.subresource, sreq.verb = "status", "update"
		updated, err := s.updateWith(ctx, r, &sreq, statusWrite, false, func(cur runtime.Object) (runtime.Object, error) {
			pod := cur.(*corev1.Pod)
			if p := opts.Preconditions; p != nil {
				if p.UID != nil && *p.UID != "" && *p.UID != pod.UID {
					return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, pod.UID))
				}
				if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
					return nil, apierrors.NewConflict(req.gvr.GroupResource(), req.name, fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, pod.ResourceVersion))
				}
			}
			setDisruptionTarget(pod)
			return pod, nil
		})
		if err != nil {
			return err
		}
		if !rvUnset(opts) {
			opts = withRV(opts, updated.(*corev1.Pod).ResourceVersion)
		}
	}
	_, _, err := s.deleteObject(ctx, r, req, opts)
	return err
}

// setDisruptionTarget sets the DisruptionTarget condition an eviction
// gives its pod, keeping its transition time if it already had it.
func setDisruptionTarget(pod *corev1.Pod) {
	c := corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting",
		LastTransitionTime: metav1.Now(),
	}
	for i, old := range pod.Status.Conditions {
		if old.Type == c.Type {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			pod.Status.Conditions[i] = c
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}
