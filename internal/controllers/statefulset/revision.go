package statefulset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// hashRevision names a revision's content: fnv32a over its data and the
// collision count, as upstream's HashControllerRevision.
func hashRevision(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// newRevision returns the ControllerRevision of set's current template.
func newRevision(set *appsv1.StatefulSet, revision int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	data, err := controllerutil.TemplatePatch(&set.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("encode template of statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	labels := maps.Clone(set.Spec.Template.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	name := set.Name + "-" + hashRevision(data, collisionCount)
	labels[appsv1.ControllerRevisionHashLabelKey] = name
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       set.Namespace,
			Labels:          labels,
			Annotations:     maps.Clone(set.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}, nil
}

// applyRevision returns set with the template recorded in rev.
func applyRevision(set *appsv1.StatefulSet, rev *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	var patch struct {
		Spec struct {
			Template v1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("decode revision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	out := set.DeepCopy()
	out.Spec.Template = patch.Spec.Template
	return out, nil
}

// revisions returns the current and update revisions of set, creating the
// update revision if its template is new, as upstream's
// getStatefulSetRevisions. revs are the set's revisions; collisionCount is
// the set's status.collisionCount, raised on a hash collision.
func (c *Controller) revisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision, collisionCount *int32) (current, update *appsv1.ControllerRevision, _ error) {
	slices.SortStableFunc(revs, func(a, b *appsv1.ControllerRevision) int {
		if a.Revision != b.Revision {
			return int(a.Revision - b.Revision)
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	next := controllerutil.MaxRevision(revs) + 1
	want, err := newRevision(set, next, collisionCount)
	if err != nil {
		return nil, nil, err
	}
	var equal []*appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, want.Data.Raw) {
			equal = append(equal, r)
		}
	}
	switch {
	case len(equal) > 0 && equal[len(equal)-1] == revs[len(revs)-1]:
		// The latest revision is the template: nothing to record.
		update = equal[len(equal)-1]
	case len(equal) > 0:
		// A rollback to an earlier template: it becomes the latest.
		r := equal[len(equal)-1].DeepCopy()
		r.Revision = next
		update, err = c.client.AppsV1().ControllerRevisions(set.Namespace).Update(ctx, r, metav1.UpdateOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("update revision %s/%s: %w", r.Namespace, r.Name, err)
		}
	default:
		update, err = c.createRevision(ctx, set, want, collisionCount)
		if err != nil {
			return nil, nil, err
		}
	}
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			current = r
			break
		}
	}
	if current == nil {
		current = update
	}
	return current, update, nil
}

// createRevision creates rev. A revision of the same name with other data
// is a hash collision: the collision count goes up (the caller writes it to
// status) and the sync retries with a new name.
func (c *Controller) createRevision(ctx context.Context, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	created, collision, err := controllerutil.CreateRevision(ctx, c.client.AppsV1(), set, rev)
	if !collision {
		return created, err
	}
	*collisionCount++
	return nil, fmt.Errorf("revision %s/%s: hash collision, collisionCount now %d", rev.Namespace, rev.Name, *collisionCount)
}

// truncateHistory deletes the oldest revisions beyond
// revisionHistoryLimit, never one a live pod, current or update uses.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*v1.Pod, revs []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	var history []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			history = append(history, r)
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	slices.SortStableFunc(history, func(a, b *appsv1.ControllerRevision) int { return int(a.Revision - b.Revision) })
	for len(history) > limit {
		r := history[0]
		history = history[1:]
		err := c.client.AppsV1().ControllerRevisions(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(r.UID))})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete revision %s/%s: %w", r.Namespace, r.Name, err)
		}
	}
	return nil
}
