package pods

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// podPhase follows the kubelet's getPhase (without sidecar containers):
// Pending until every init container succeeded and every container
// started; Running while any runs or will restart; Succeeded or Failed
// once all stopped for good.
func podPhase(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus) v1.PodPhase {
	pendingInit, failedInit := 0, 0
	for _, st := range initStatuses {
		switch {
		case st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			if st.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case st.State.Waiting != nil:
			if last := st.LastTerminationState.Terminated; last != nil {
				if last.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for _, st := range statuses {
		switch {
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			stopped++
			if st.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case st.State.Waiting != nil:
			if st.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	unknown += len(pod.Spec.Containers) - len(statuses)
	if failedInit > 0 && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0, waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		switch {
		case pod.Spec.RestartPolicy == v1.RestartPolicyAlways:
			return v1.PodRunning
		case stopped == succeeded:
			return v1.PodSucceeded
		case pod.Spec.RestartPolicy == v1.RestartPolicyNever:
			return v1.PodFailed
		}
		return v1.PodRunning
	}
	return v1.PodPending
}

// agentConditions are the condition types the agent owns, in the order
// the kubelet reports them.
var agentConditions = []v1.PodConditionType{
	v1.PodReadyToStartContainers, v1.PodInitialized, v1.PodReady, v1.ContainersReady, v1.PodScheduled,
}

// podConditions recomputes the agent's conditions of s and keeps the
// others (readiness gates, disruption) as they are. A condition keeps its
// transition time while its status stays the same.
func podConditions(in statusInputs, s *v1.PodStatus) []v1.PodCondition {
	old := map[v1.PodConditionType]v1.PodCondition{}
	var out []v1.PodCondition
	for _, c := range in.old.Conditions {
		old[c.Type] = c
		if !isAgentCondition(c.Type) {
			out = append(out, c)
		}
	}
	sandboxUp := in.rt.sandboxReady() && (in.pod.Spec.HostNetwork || len(in.rt.podIPs()) > 0)
	gen := []v1.PodCondition{
		{Type: v1.PodReadyToStartContainers, Status: boolCondition(sandboxUp)},
		initializedCondition(in.pod, s),
		readyCondition(in.pod, s, out),
		containersReadyCondition(s),
		{Type: v1.PodScheduled, Status: v1.ConditionTrue},
	}
	if c, ok := old[v1.PodScheduled]; ok {
		gen[4] = c
	}
	for _, c := range gen {
		if o, ok := old[c.Type]; ok && o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
		} else if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = seconds(in.now)
		}
		out = append(out, c)
	}
	return out
}

func isAgentCondition(t v1.PodConditionType) bool {
	for _, a := range agentConditions {
		if a == t {
			return true
		}
	}
	return false
}

func boolCondition(b bool) v1.ConditionStatus {
	if b {
		return v1.ConditionTrue
	}
	return v1.ConditionFalse
}

func initializedCondition(pod *v1.Pod, s *v1.PodStatus) v1.PodCondition {
	c := v1.PodCondition{Type: v1.PodInitialized, Status: v1.ConditionTrue}
	var incomplete []string
	for _, st := range s.InitContainerStatuses {
		if st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, st.Name)
		}
	}
	if len(incomplete) == 0 {
		if s.Phase == v1.PodSucceeded && len(pod.Spec.InitContainers) > 0 {
			c.Reason = "PodCompleted"
		}
		return c
	}
	// A regular container that ran proves initialization happened once.
	for _, st := range s.ContainerStatuses {
		if st.State.Running != nil || st.State.Terminated != nil {
			return c
		}
	}
	c.Status, c.Reason = v1.ConditionFalse, "ContainersNotInitialized"
	c.Message = fmt.Sprintf("containers with incomplete status: %v", incomplete)
	return c
}

func containersReadyCondition(s *v1.PodStatus) v1.PodCondition {
	c := v1.PodCondition{Type: v1.ContainersReady, Status: v1.ConditionTrue}
	if s.Phase == v1.PodSucceeded {
		c.Status, c.Reason = v1.ConditionFalse, "PodCompleted"
		return c
	}
	var unready []string
	for _, st := range s.ContainerStatuses {
		if !st.Ready {
			unready = append(unready, st.Name)
		}
	}
	if len(unready) > 0 {
		c.Status, c.Reason = v1.ConditionFalse, "ContainersNotReady"
		c.Message = fmt.Sprintf("containers with unready status: %v", unready)
	}
	return c
}

// readyCondition is ContainersReady and every readiness gate True.
func readyCondition(pod *v1.Pod, s *v1.PodStatus, others []v1.PodCondition) v1.PodCondition {
	c := containersReadyCondition(s)
	c.Type = v1.PodReady
	if c.Status != v1.ConditionTrue {
		return c
	}
	var msgs []string
	for _, gate := range pod.Spec.ReadinessGates {
		found := false
		for _, o := range others {
			if o.Type != gate.ConditionType {
				continue
			}
			found = true
			if o.Status != v1.ConditionTrue {
				msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", gate.ConditionType, o.Status))
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", gate.ConditionType))
		}
	}
	if len(msgs) > 0 {
		c.Status, c.Reason, c.Message = v1.ConditionFalse, "ReadinessGatesNotReady", strings.Join(msgs, ", ")
	}
	return c
}
