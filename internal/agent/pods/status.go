package pods

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Waiting reasons of the kubelet, which kubectl and users know.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonErrImagePull      = "ErrImagePull"
	reasonImagePullBackOff  = "ImagePullBackOff"
	reasonErrImageNeverPull = "ErrImageNeverPull"
	reasonImageInspect      = "ImageInspectError"
	reasonCreateConfig      = "CreateContainerConfigError"
	reasonCreateContainer   = "CreateContainerError"
	reasonRunContainer      = "RunContainerError"
	reasonPostStartHook     = "PostStartHookError"
)

// statusInputs is everything a pod's status is computed from.
type statusInputs struct {
	pod *v1.Pod
	// old is the status last written (or the API's); conditions keep
	// their transition times from it.
	old     v1.PodStatus
	rt      *podRuntime
	reasons map[string]waiting
	// ready and started are the probes' verdicts for a running container.
	ready, started func(spec *v1.Container, id string) bool
	// message is an exited container's termination message.
	message     func(c *container) string
	hostIPs     []string
	runtimeName string
	now         time.Time
}

// computeStatus is the pod's status as the agent reports it: the old
// status with every field the agent owns recomputed.
func computeStatus(in statusInputs) v1.PodStatus {
	pod := in.pod
	s := *in.old.DeepCopy()
	hasInit := len(pod.Spec.InitContainers) > 0
	s.InitContainerStatuses = containerStatuses(in, pod.Spec.InitContainers, in.old.InitContainerStatuses, true, hasInit)
	s.ContainerStatuses = containerStatuses(in, pod.Spec.Containers, in.old.ContainerStatuses, false, hasInit)
	if len(s.InitContainerStatuses) == 0 {
		s.InitContainerStatuses = nil
	}

	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses)
	// Terminal phases are final; the API refuses to leave them.
	if terminal(in.old.Phase) {
		s.Phase = in.old.Phase
	}
	if s.Phase != in.old.Phase {
		s.Reason, s.Message = "", ""
	}
	if s.QOSClass == "" {
		s.QOSClass = qosClass(pod)
	}
	if s.StartTime == nil {
		t := seconds(in.now)
		s.StartTime = &t
	}
	if len(in.hostIPs) > 0 {
		s.HostIP = in.hostIPs[0]
		s.HostIPs = nil
		for _, ip := range in.hostIPs {
			s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip})
		}
	}
	podIPs := in.rt.podIPs()
	if pod.Spec.HostNetwork {
		podIPs = in.hostIPs
	}
	// A stopped sandbox reports no address; keep the last one known.
	if len(podIPs) > 0 {
		s.PodIP = podIPs[0]
		s.PodIPs = nil
		for _, ip := range podIPs {
			s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
		}
	}
	s.Conditions = podConditions(in, &s)
	return s
}

// containerStatuses reports containers from their newest runtime
// container, the one before it (lastState), and why a container that
// should start has not.
func containerStatuses(in statusInputs, specs []v1.Container, old []v1.ContainerStatus, isInit, hasInit bool) []v1.ContainerStatus {
	defaultReason := reasonContainerCreating
	if hasInit {
		defaultReason = reasonPodInitializing
	}
	oldByName := map[string]*v1.ContainerStatus{}
	for i := range old {
		oldByName[old[i].Name] = &old[i]
	}
	out := make([]v1.ContainerStatus, 0, len(specs))
	for i := range specs {
		spec := &specs[i]
		st := v1.ContainerStatus{
			Name:  spec.Name,
			Image: spec.Image,
			State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: defaultReason}},
		}
		history := in.rt.history(spec.Name)
		var latest *container
		if len(history) == 0 {
			// Removed from the runtime: keep what was reported.
			if o := oldByName[spec.Name]; o != nil {
				if o.State.Terminated != nil {
					st = *o.DeepCopy()
				} else {
					st.RestartCount = o.RestartCount
					st.LastTerminationState = *o.LastTerminationState.DeepCopy()
				}
			}
		} else {
			latest = history[0]
			st.ContainerID = in.runtimeName + "://" + latest.id
			st.ImageID = latest.imageRef
			st.RestartCount = int32(latest.attempt)
			st.State = containerState(in, latest)
			if len(history) > 1 {
				st.LastTerminationState = containerState(in, history[1])
			}
		}
		if w, ok := in.reasons[spec.Name]; ok && willStart(in.pod, latest, isInit) {
			if st.State.Terminated != nil {
				st.LastTerminationState = st.State
			}
			st.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}}
		}
		started, ready := false, false
		switch {
		case st.State.Running != nil && isInit:
			started = true
		case st.State.Running != nil:
			started = in.started(spec, latest.id)
			ready = started && in.ready(spec, latest.id)
		case isInit:
			ready = st.State.Terminated != nil && st.State.Terminated.ExitCode == 0
		}
		st.Started, st.Ready = &started, ready
		out = append(out, st)
	}
	return out
}

// willStart reports whether the agent means to (re)start a container whose
// newest instance is latest (nil: none yet), as the kubelet's
// ShouldContainerBeRestarted.
func willStart(pod *v1.Pod, latest *container, isInit bool) bool {
	switch {
	case pod.DeletionTimestamp != nil:
		return false
	case latest == nil:
		return true
	case latest.running():
		return false
	case !latest.done():
		return true
	case isInit && latest.exitCode == 0:
		return false
	}
	return shouldRestart(pod.Spec.RestartPolicy, latest.exitCode)
}

func containerState(in statusInputs, c *container) v1.ContainerState {
	switch c.state {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: seconds(c.startedAt)}}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		reason := c.reason
		if reason == "" {
			reason = "Error"
			if c.exitCode == 0 {
				reason = "Completed"
			}
		}
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode:    c.exitCode,
			Reason:      reason,
			Message:     in.message(c),
			StartedAt:   seconds(c.startedAt),
			FinishedAt:  seconds(c.finishedAt),
			ContainerID: in.runtimeName + "://" + c.id,
		}}
	}
	return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reasonContainerCreating}}
}

// seconds is t as the API stores it, so that a status read back compares
// equal to the one computed.
func seconds(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second).UTC())
}

func terminal(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }
