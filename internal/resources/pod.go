package resources

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pods is core/v1 pods.
func Pods() *Resource {
	return &Resource{
		GVR:              corev1.SchemeGroupVersion.WithResource("pods"),
		Kind:             "Pod",
		SingularName:     "pod",
		Namespaced:       true,
		ShortNames:       []string{"po"},
		Categories:       []string{"all"},
		New:              func() runtime.Object { return &corev1.Pod{} },
		NewList:          func() runtime.Object { return &corev1.PodList{} },
		HasStatus:        true,
		Default:          typed(defaultPod),
		PrepareForCreate: typed(preparePodForCreate),
		Validate:         typedValidate(validatePod),
		ValidateUpdate:   typedValidateUpdate(validatePodUpdate),
		ValidateStatus:   typedValidateUpdate(validatePodStatusUpdate),
		Columns:          podColumns,
		Row:              typedRowNow(podRow),
		Fields:           typedFields(podFields),
	}
}

func validatePod(pod *corev1.Pod) field.ErrorList {
	errs := validateMeta(&pod.ObjectMeta, true, nameIsDNSSubdomain)
	return append(errs, validatePodSpec(&pod.Spec, podSpecOptions{isPod: true}, field.NewPath("spec"))...)
}

// preparePodForCreate sets what the server owns in a new pod's status.
func preparePodForCreate(pod *corev1.Pod) {
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: podQOSClass(pod)}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
}

// podQOSClass follows Kubernetes' ComputePodQOS: Guaranteed when every
// container limits cpu and memory and requests equal limits, BestEffort when
// nothing is requested or limited, Burstable otherwise.
func podQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	add := func(sum corev1.ResourceList, rl corev1.ResourceList) (found map[corev1.ResourceName]bool) {
		found = map[corev1.ResourceName]bool{}
		for name, q := range rl {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory || q.Sign() <= 0 {
				continue
			}
			found[name] = true
			total := q.DeepCopy()
			if prev, ok := sum[name]; ok {
				total.Add(prev)
			}
			sum[name] = total
		}
		return found
	}
	if r := pod.Spec.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		add(requests, r.Requests)
		found := add(limits, r.Limits)
		guaranteed = found[corev1.ResourceCPU] && found[corev1.ResourceMemory]
	} else {
		all := append(append([]corev1.Container{}, pod.Spec.Containers...), pod.Spec.InitContainers...)
		for _, c := range all {
			add(requests, c.Resources.Requests)
			found := add(limits, c.Resources.Limits)
			if !found[corev1.ResourceCPU] || !found[corev1.ResourceMemory] {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

const podUpdatableFields = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`," +
	"`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds`,`spec.schedulingGates` (only removals)"

// validatePodUpdate allows only the few spec changes a running pod can
// follow; everything else needs a new pod. Binding a pod to a node is the
// pods/binding subresource's job, not an update's.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	if len(pod.Spec.Containers) != len(old.Spec.Containers) {
		return append(errs, field.Forbidden(sp.Child("containers"), "pod updates may not add or remove containers"))
	}
	if len(pod.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return append(errs, field.Forbidden(sp.Child("initContainers"), "pod updates may not add or remove containers"))
	}
	ap := sp.Child("activeDeadlineSeconds")
	switch n, o := pod.Spec.ActiveDeadlineSeconds, old.Spec.ActiveDeadlineSeconds; {
	case n == nil && o != nil:
		errs = append(errs, field.Invalid(ap, n, "must not update from a positive integer to nil value"))
	case n != nil && (*n < 0 || *n > math.MaxInt32):
		errs = append(errs, field.Invalid(ap, *n, validation.InclusiveRangeError(0, math.MaxInt32)))
	case n != nil && o != nil && *n > *o:
		errs = append(errs, field.Invalid(ap, *n, "must be less than or equal to previous value"))
	}
	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, sp.Child("tolerations"))...)
	for _, g := range pod.Spec.SchedulingGates {
		if !containsGate(old.Spec.SchedulingGates, g.Name) {
			errs = append(errs, field.Forbidden(sp.Child("schedulingGates"), "only deletion is allowed, but found new scheduling gate '"+g.Name+"'"))
		}
	}
	if apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return errs
	}
	// Set the updatable fields back to the old values; any difference left is forbidden.
	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.Tolerations = old.Spec.Tolerations
	munged.TerminationGracePeriodSeconds = old.Spec.TerminationGracePeriodSeconds
	munged.SchedulingGates = old.Spec.SchedulingGates
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		diff := cmp.Diff(old.Spec, *munged, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 }))
		errs = append(errs, field.Forbidden(sp, fmt.Sprintf("pod updates may not change fields other than %s\n%v", podUpdatableFields, diff)))
	}
	return errs
}

func containsGate(gs []corev1.PodSchedulingGate, name string) bool {
	for _, g := range gs {
		if g.Name == name {
			return true
		}
	}
	return false
}

// validateOnlyAddedTolerations: existing tolerations stay, except that their
// tolerationSeconds may change.
func validateOnlyAddedTolerations(ts, old []corev1.Toleration, p *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range ts {
			c := o
			c.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(c, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(p, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// validatePodStatusUpdate checks what an agent or the scheduler reports.
func validatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("status")
	st := &pod.Status
	if st.Phase != "" && !oneOf(st.Phase, podPhases...) {
		errs = append(errs, field.NotSupported(sp.Child("phase"), st.Phase, podPhases))
	}
	if terminal(old.Status.Phase) && !terminal(st.Phase) {
		errs = append(errs, field.Forbidden(sp.Child("phase"), "may not be transitioned to non-terminal state"))
	}
	if st.NominatedNodeName != "" {
		errs = append(errs, messages(sp.Child("nominatedNodeName"), st.NominatedNodeName, nameIsDNSSubdomain(st.NominatedNodeName, false))...)
	}
	if st.PodIP != "" {
		errs = append(errs, validation.IsValidIP(sp.Child("podIP"), st.PodIP)...)
	}
	for i, ip := range st.PodIPs {
		errs = append(errs, validation.IsValidIP(sp.Child("podIPs").Index(i).Child("ip"), ip.IP)...)
	}
	if len(st.PodIPs) > 0 && st.PodIP != st.PodIPs[0].IP {
		errs = append(errs, field.Invalid(sp.Child("podIPs").Index(0).Child("ip"), st.PodIPs[0].IP, "must match `podIP`"))
	}
	if st.HostIP != "" {
		errs = append(errs, validation.IsValidIP(sp.Child("hostIP"), st.HostIP)...)
	}
	for _, cs := range []struct {
		name     string
		statuses []corev1.ContainerStatus
		spec     []corev1.Container
	}{{"containerStatuses", st.ContainerStatuses, pod.Spec.Containers}, {"initContainerStatuses", st.InitContainerStatuses, pod.Spec.InitContainers}} {
		for i, s := range cs.statuses {
			if !containsContainer(cs.spec, s.Name) {
				errs = append(errs, field.NotFound(sp.Child(cs.name).Index(i).Child("name"), s.Name))
			}
			errs = append(errs, validateNonnegative(int64(s.RestartCount), sp.Child(cs.name).Index(i).Child("restartCount"))...)
		}
	}
	return errs
}

func terminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

func containsContainer(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// podFields are the selectable fields kube-apiserver offers for pods.
func podFields(pod *corev1.Pod) fields.Set {
	podIP := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	}
	return fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             podIP,
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	}
}

// containerCells lays out container names and images as kubectl's wide output does.
func containerCells(cs []corev1.Container) (names, images string) {
	n, im := make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}
