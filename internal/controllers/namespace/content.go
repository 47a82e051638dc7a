package namespace

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// contentResult is what one deletion pass over a namespace left behind.
type contentResult struct {
	discoveryErr error          // the resources may be incomplete
	remaining    map[string]int // resource ("pods", "replicasets.apps") → objects left
	finalizers   map[string]int // finalizer → objects left that carry it
	failures     []error
}

func (r contentResult) total() int {
	n := 0
	for _, v := range r.remaining {
		n += v
	}
	return n
}

// deleteContent deletes every object of every resource in namespace ns and
// counts what is still there afterwards. It lists and deletes one by one
// rather than using DeleteCollection, which not every resource supports.
func (c *Controller) deleteContent(ctx context.Context, ns string) contentResult {
	res := contentResult{remaining: map[string]int{}, finalizers: map[string]int{}}
	resources, err := c.discover()
	if err != nil {
		// Like Kubernetes: delete what is known, but do not finalize.
		res.discoveryErr = fmt.Errorf("discover resources: %w", err)
	}
	background := metav1.DeletePropagationBackground
	for _, gvr := range resources {
		client := c.meta.Resource(gvr).Namespace(ns)
		list, err := client.List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			continue // the resource went away or cannot be listed: nothing to do
		}
		if err != nil {
			res.failures = append(res.failures, fmt.Errorf("list %s: %w", gvr.GroupResource(), err))
			continue
		}
		deleted := false
		for _, item := range list.Items {
			if item.DeletionTimestamp != nil {
				continue
			}
			uid := item.UID
			err := client.Delete(ctx, item.Name, metav1.DeleteOptions{
				PropagationPolicy: &background,
				Preconditions:     &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				res.failures = append(res.failures, fmt.Errorf("delete %s %s/%s: %w", gvr.GroupResource(), ns, item.Name, err))
			}
			deleted = true
		}
		if deleted {
			// Most objects go at once; count what really remains.
			if list, err = client.List(ctx, metav1.ListOptions{}); err != nil {
				res.failures = append(res.failures, fmt.Errorf("list %s: %w", gvr.GroupResource(), err))
				continue
			}
		}
		for _, item := range list.Items {
			res.remaining[resourceName(gvr)]++
			for _, f := range item.Finalizers {
				res.finalizers[f]++
			}
		}
	}
	return res
}

func resourceName(gvr schema.GroupVersionResource) string {
	return gvr.GroupResource().String()
}

// conditions renders a deletion pass as Kubernetes' namespace conditions.
func (r contentResult) conditions() []v1.NamespaceCondition {
	discovery := v1.NamespaceCondition{Type: v1.NamespaceDeletionDiscoveryFailure, Status: v1.ConditionFalse,
		Reason: "ResourcesDiscovered", Message: "All resources successfully discovered"}
	if r.discoveryErr != nil {
		discovery.Status, discovery.Reason = v1.ConditionTrue, "DiscoveryFailed"
		discovery.Message = fmt.Sprintf("Discovery failed for some groups: %v", r.discoveryErr)
	}
	failure := v1.NamespaceCondition{Type: v1.NamespaceDeletionContentFailure, Status: v1.ConditionFalse,
		Reason: "ContentDeleted", Message: "All content successfully deleted, may be waiting on finalization"}
	if len(r.failures) > 0 {
		msgs := make([]string, len(r.failures))
		for i, err := range r.failures {
			msgs[i] = err.Error()
		}
		failure.Status, failure.Reason = v1.ConditionTrue, "ContentDeletionFailed"
		failure.Message = fmt.Sprintf("Failed to delete all resource types, %d remaining: %s", len(r.failures), strings.Join(msgs, ", "))
	}
	remaining := v1.NamespaceCondition{Type: v1.NamespaceContentRemaining, Status: v1.ConditionFalse,
		Reason: "ContentRemoved", Message: "All content successfully removed"}
	if len(r.remaining) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.remaining)) {
			parts = append(parts, fmt.Sprintf("%s has %d resource instances", k, r.remaining[k]))
		}
		remaining.Status, remaining.Reason = v1.ConditionTrue, "SomeResourcesRemain"
		remaining.Message = "Some resources are remaining: " + strings.Join(parts, ", ")
	}
	fins := v1.NamespaceCondition{Type: v1.NamespaceFinalizersRemaining, Status: v1.ConditionFalse,
		Reason: "ContentHasNoFinalizers", Message: "All content-preserving finalizers finished"}
	if len(r.finalizers) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.finalizers)) {
			parts = append(parts, fmt.Sprintf("%s in %d resource instances", k, r.finalizers[k]))
		}
		fins.Status, fins.Reason = v1.ConditionTrue, "SomeFinalizersRemain"
		fins.Message = "Some content in the namespace has finalizers remaining: " + strings.Join(parts, ", ")
	}
	return []v1.NamespaceCondition{discovery, failure, remaining, fins}
}

// mergeConditions sets want into have, keeping transition times of
// conditions whose status did not change, and reports whether anything did.
func mergeConditions(have, want []v1.NamespaceCondition, now metav1.Time) ([]v1.NamespaceCondition, bool) {
	out := slices.Clone(have)
	changed := false
	for _, w := range want {
		i := slices.IndexFunc(out, func(c v1.NamespaceCondition) bool { return c.Type == w.Type })
		if i < 0 {
			w.LastTransitionTime = now
			out = append(out, w)
			changed = true
			continue
		}
		old := out[i]
		if old.Status == w.Status && old.Reason == w.Reason && old.Message == w.Message {
			continue
		}
		w.LastTransitionTime = old.LastTransitionTime
		if old.Status != w.Status {
			w.LastTransitionTime = now
		}
		out[i] = w
		changed = true
	}
	return out, changed
}
