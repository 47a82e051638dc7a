package deployment

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
)

// Annotations Kubernetes' deployment controller keeps and kubectl reads
// (rollout history and undo).
const (
	annRevision        = "deployment.kubernetes.io/revision"
	annRevisionHistory = "deployment.kubernetes.io/revision-history"
	annDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	annMaxReplicas     = "deployment.kubernetes.io/max-replicas"

	// maxRevHistoryLengthInChars bounds revision-history so a Deployment
	// rolled back and forth many times keeps small annotations.
	maxRevHistoryLengthInChars = 2000
)

// annotationsNotCopied are the Deployment annotations that do not belong on
// its ReplicaSets (or that the controller manages itself on each).
var annotationsNotCopied = map[string]bool{
	v1.LastAppliedConfigAnnotation: true,
	annRevision:                    true,
	annRevisionHistory:             true,
	annDesiredReplicas:             true,
	annMaxReplicas:                 true,
	appsv1.DeprecatedRollbackTo:    true,
}

// revisionOf returns the revision annotation of annotations; 0 if absent.
func revisionOf(annotations map[string]string) (int64, error) {
	v, ok := annotations[annRevision]
	if !ok {
		return 0, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// maxRevision returns the highest revision among rss, skipping unparsable
// ones.
func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		if rs == nil {
			continue
		}
		if v, err := revisionOf(rs.Annotations); err == nil {
			m = max(m, v)
		}
	}
	return m
}

// setNewReplicaSetAnnotations brings the annotations of the new ReplicaSet up
// to date: the Deployment's own annotations (change-cause among them), the
// revision newRevision if it is higher than the current one (an old
// ReplicaSet becoming new again, by rollout undo, remembers its previous
// revisions in revision-history), and for a ReplicaSet about to be created
// the replica annotations. It reports whether anything changed.
func setNewReplicaSetAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision string, exists bool, historyLimit int) bool {
	changed := copyDeploymentAnnotations(d, rs)
	oldRevision, hadRevision := rs.Annotations[annRevision]
	oldRev, err := strconv.ParseInt(oldRevision, 10, 64)
	if err != nil {
		if oldRevision != "" {
			return false // not ours to fix; leave it
		}
		oldRev = 0
	}
	newRev, err := strconv.ParseInt(newRevision, 10, 64)
	if err != nil {
		return false
	}
	// Only ever raise it: old ReplicaSets may have been cleaned up since the
	// new one got its revision, making newRevision lower.
	if oldRev < newRev {
		rs.Annotations[annRevision] = newRevision
		changed = true
		if hadRevision {
			rs.Annotations[annRevisionHistory] = appendRevisionHistory(rs.Annotations[annRevisionHistory], oldRevision, historyLimit)
		}
	}
	if !exists && setReplicasAnnotations(rs, *d.Spec.Replicas, *d.Spec.Replicas+maxSurge(d)) {
		changed = true
	}
	return changed
}

// appendRevisionHistory appends rev to the comma-separated history, dropping
// the oldest entries to stay within limit characters.
func appendRevisionHistory(history, rev string, limit int) string {
	if history == "" {
		return rev
	}
	revs := strings.Split(history, ",")
	total := len(history) + len(rev) + 1
	start := 0
	for total > limit && start < len(revs) {
		total -= len(revs[start]) + 1
		start++
	}
	if total > limit {
		return history
	}
	return strings.Join(append(revs[start:], rev), ",")
}

// copyDeploymentAnnotations copies d's annotations to rs, except the ones
// that describe a single ReplicaSet; it reports whether rs changed.
func copyDeploymentAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs.Annotations == nil {
		rs.Annotations = make(map[string]string)
	}
	changed := false
	for k, v := range d.Annotations {
		if annotationsNotCopied[k] || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	return changed
}

// setDeploymentRevision sets d's revision annotation; it reports whether it
// changed.
func setDeploymentRevision(d *appsv1.Deployment, revision string) bool {
	if d.Annotations == nil {
		d.Annotations = make(map[string]string)
	}
	if d.Annotations[annRevision] == revision {
		return false
	}
	d.Annotations[annRevision] = revision
	return true
}

// setReplicasAnnotations records on rs the Deployment size it was scaled for
// (desired-replicas) and that size plus surge (max-replicas), which
// proportional scaling and saturation checks read back.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = make(map[string]string)
	}
	changed := false
	for k, v := range map[string]string{
		annDesiredReplicas: strconv.Itoa(int(desired)),
		annMaxReplicas:     strconv.Itoa(int(maxReplicas)),
	} {
		if rs.Annotations[k] != v {
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

func replicasAnnotationsNeedUpdate(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	return rs.Annotations[annDesiredReplicas] != strconv.Itoa(int(desired)) ||
		rs.Annotations[annMaxReplicas] != strconv.Itoa(int(maxReplicas))
}

func desiredReplicasAnnotation(rs *appsv1.ReplicaSet) (int32, bool) {
	return intAnnotation(rs, annDesiredReplicas)
}

func maxReplicasAnnotation(rs *appsv1.ReplicaSet) (int32, bool) {
	return intAnnotation(rs, annMaxReplicas)
}

func intAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}
