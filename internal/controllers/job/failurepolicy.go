package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
)

// policyMatch is what the pod failure policy says of a failed pod.
type policyMatch struct {
	// action of the first matching rule, "" if none matched.
	action batchv1.PodFailurePolicyAction
	// count: the failure counts toward backoffLimit (and
	// backoffLimitPerIndex); false for Ignore.
	count bool
	// failJobMessage is the Job's failure message, for FailJob.
	failJobMessage string
}

// matchPodFailurePolicy matches failedPod against the rules in order; the
// first that matches decides. No policy, or no matching rule, counts the
// failure.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, failedPod *v1.Pod) policyMatch {
	if policy == nil {
		return policyMatch{count: true}
	}
	for i, rule := range policy.Rules {
		var failJobMessage string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchOnExitCodes(&failedPod.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			failJobMessage = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
				cs.Name, failedPod.Namespace, failedPod.Name, cs.State.Terminated.ExitCode, rule.Action, i)
		case rule.OnPodConditions != nil:
			cond := matchOnPodConditions(&failedPod.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			failJobMessage = fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d",
				failedPod.Namespace, failedPod.Name, cond.Type, rule.Action, i)
		default:
			continue
		}
		switch rule.Action {
		case batchv1.PodFailurePolicyActionIgnore:
			return policyMatch{action: rule.Action}
		case batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionCount:
			return policyMatch{action: rule.Action, count: true}
		case batchv1.PodFailurePolicyActionFailJob:
			return policyMatch{action: rule.Action, count: true, failJobMessage: failJobMessage}
		}
		// An action this version does not know: try the next rule, as
		// Kubernetes does.
	}
	return policyMatch{count: true}
}

// matchOnExitCodes returns the first terminated container (then init
// container) whose non-zero exit code matches req, or nil.
func matchOnExitCodes(status *v1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{status.ContainerStatuses, status.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			t := cs.State.Terminated
			if t == nil || t.ExitCode == 0 {
				continue // still running or terminating, or succeeded
			}
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := slices.Contains(req.Values, t.ExitCode)
			switch req.Operator {
			case batchv1.PodFailurePolicyOnExitCodesOpIn:
				if in {
					return cs
				}
			case batchv1.PodFailurePolicyOnExitCodesOpNotIn:
				if !in {
					return cs
				}
			}
		}
	}
	return nil
}

// matchOnPodConditions returns the first of the pod's conditions that a
// pattern matches (type and status), or nil.
func matchOnPodConditions(status *v1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *v1.PodCondition {
	for i := range status.Conditions {
		c := &status.Conditions[i]
		for _, p := range patterns {
			if c.Type == p.Type && c.Status == p.Status {
				return c
			}
		}
	}
	return nil
}
