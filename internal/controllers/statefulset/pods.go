package statefulset

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// podNameRE splits a member's name into the set's name and its ordinal.
var podNameRE = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// parentAndOrdinal returns the set name and ordinal a pod name encodes, or
// ordinal -1.
func parentAndOrdinal(name string) (string, int) {
	m := podNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", -1
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return "", -1
	}
	return m[1], n
}

func podName(set *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d", set.Name, ordinal)
}

// isMemberOf: only pods named after the set are its members, whatever
// their labels.
func isMemberOf(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	parent, ord := parentAndOrdinal(pod.Name)
	return ord >= 0 && parent == set.Name
}

func ordinalOf(pod *v1.Pod) int {
	_, ord := parentAndOrdinal(pod.Name)
	return ord
}

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicasOf(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// inOrdinalRange: the pod's ordinal is one the set wants.
func inOrdinalRange(set *appsv1.StatefulSet, pod *v1.Pod) bool {
	ord, start := ordinalOf(pod), startOrdinal(set)
	return ord >= start && ord < start+replicasOf(set)
}

func claimName(set *appsv1.StatefulSet, template *v1.PersistentVolumeClaim, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template.Name, set.Name, ordinal)
}

func revisionOf(pod *v1.Pod) string {
	return pod.Labels[appsv1.ControllerRevisionHashLabelKey]
}

func isCreated(pod *v1.Pod) bool     { return pod.Status.Phase != "" }
func isFailed(pod *v1.Pod) bool      { return pod.Status.Phase == v1.PodFailed }
func isSucceeded(pod *v1.Pod) bool   { return pod.Status.Phase == v1.PodSucceeded }
func isTerminating(pod *v1.Pod) bool { return pod.DeletionTimestamp != nil }

func isRunningAndReady(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodRunning && controllerutil.IsPodReady(pod)
}

func isRunningAndAvailable(pod *v1.Pod, minReadySeconds int32, now time.Time) bool {
	return pod.Status.Phase == v1.PodRunning && controllerutil.IsPodAvailable(pod, minReadySeconds, now)
}

// isHealthy: a pod the set may move past, in order or during an update.
func isHealthy(pod *v1.Pod, minReadySeconds int32, now time.Time) bool {
	return isRunningAndAvailable(pod, minReadySeconds, now) && !isTerminating(pod)
}

// newPod returns the pod of ordinal made from set's template (the set as of
// a revision), labelled with that revision.
func newPod(set *appsv1.StatefulSet, ordinal int, revision string) *v1.Pod {
	t := &set.Spec.Template
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            podName(set, ordinal),
			Namespace:       set.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	setIdentity(set, pod)
	setStorage(set, pod)
	return pod
}

// labelsMatch: the pod carries its name labels (an adopted pod may not).
func labelsMatch(pod *v1.Pod) bool {
	return pod.Labels[appsv1.StatefulSetPodNameLabel] == pod.Name &&
		pod.Labels[appsv1.PodIndexLabel] == strconv.Itoa(ordinalOf(pod))
}

// setIdentity gives the pod its name labels and its DNS name
// <pod>.<serviceName>: hostname and subdomain.
func setIdentity(set *appsv1.StatefulSet, pod *v1.Pod) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = pod.Name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinalOf(pod))
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
}

// setStorage makes each claim template a volume of the pod, replacing a
// template volume of the same name.
func setStorage(set *appsv1.StatefulSet, pod *v1.Pod) {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return
	}
	claims := make(map[string]string, len(set.Spec.VolumeClaimTemplates))
	var vols []v1.Volume
	ord := ordinalOf(pod)
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		claims[t.Name] = claimName(set, t, ord)
		vols = append(vols, v1.Volume{Name: t.Name, VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claims[t.Name]},
		}})
	}
	for _, v := range pod.Spec.Volumes {
		if _, ok := claims[v.Name]; !ok {
			vols = append(vols, v)
		}
	}
	pod.Spec.Volumes = vols
}

// claimsFor returns the claims pod of set needs, from the templates.
func claimsFor(set *appsv1.StatefulSet, pod *v1.Pod) []*v1.PersistentVolumeClaim {
	ord := ordinalOf(pod)
	var out []*v1.PersistentVolumeClaim
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		c := &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name:        claimName(set, t, ord),
				Namespace:   set.Namespace,
				Labels:      maps.Clone(t.Labels),
				Annotations: maps.Clone(t.Annotations),
			},
			Spec: *t.Spec.DeepCopy(),
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			maps.Copy(c.Labels, set.Spec.Selector.MatchLabels)
		}
		out = append(out, c)
	}
	return out
}

// retentionPolicy returns the claim retention policy, Retain where unset.
func retentionPolicy(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	p := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if rp := set.Spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		if rp.WhenDeleted != "" {
			p.WhenDeleted = rp.WhenDeleted
		}
		if rp.WhenScaled != "" {
			p.WhenScaled = rp.WhenScaled
		}
	}
	return p
}

// claimOwners returns the claim's ownerReferences as the retention policy
// wants them, as upstream's updateClaimOwnerRefForSetAndPod: WhenDeleted
// Delete makes the set an owner (the claim goes with the set), WhenScaled
// Delete makes the pod an owner once its ordinal is beyond replicas (the
// claim goes with the scaled-down pod), and Retain removes those owners.
// Other owners are kept. changed reports a difference.
func claimOwners(claim *v1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *v1.Pod) (refs []metav1.OwnerReference, changed bool) {
	p := retentionPolicy(set)
	del := appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	scaledDown := !inOrdinalRange(set, pod)
	wantSet := p.WhenDeleted == del && (p.WhenScaled != del || !scaledDown)
	wantPod := p.WhenScaled == del && scaledDown
	refs = claim.OwnerReferences
	setRef := metav1.OwnerReference{APIVersion: controllerKind.GroupVersion().String(), Kind: controllerKind.Kind, Name: set.Name, UID: set.UID}
	podRef := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
	refs, c1 := ensureOwner(refs, setRef, wantSet)
	refs, c2 := ensureOwner(refs, podRef, wantPod)
	return refs, c1 || c2
}

// ensureOwner adds ref to refs (want) or removes every reference to its
// uid (not want). A reference to an older object of the same name (another
// uid) is left alone; the garbage collector deals with it.
func ensureOwner(refs []metav1.OwnerReference, ref metav1.OwnerReference, want bool) ([]metav1.OwnerReference, bool) {
	has := hasOwner(refs, ref.UID)
	switch {
	case want && !has:
		return append(append([]metav1.OwnerReference(nil), refs...), ref), true
	case !want && has:
		var out []metav1.OwnerReference
		for _, r := range refs {
			if r.UID != ref.UID {
				out = append(out, r)
			}
		}
		return out, true
	}
	return refs, false
}

func hasOwner(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}
