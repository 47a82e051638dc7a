package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	schedulerName = "default-scheduler"
	wildcardIP    = "0.0.0.0"
	// taintUnschedulable is the taint Kubernetes puts on cordoned nodes; a pod
	// that tolerates it may also land on a node with spec.unschedulable.
	taintUnschedulable = "node.kubernetes.io/unschedulable"
)

// hostPort is one host port a pod binds, normalised so comparisons are plain.
type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

func (a hostPort) conflicts(b hostPort) bool {
	return a.port == b.port && a.protocol == b.protocol &&
		(a.ip == b.ip || a.ip == wildcardIP || b.ip == wildcardIP)
}

// podUsage is what a pod takes from the node it runs on. It is computed once
// per pod and shared by the pod's scheduling attempt and its cache record.
type podUsage struct {
	req     resources
	nonzero resources // cpu and memory only, with defaults; for scoring
	ports   []hostPort
	owner   types.UID // controller ownerReference, for spreading replicas
}

func usageOf(pod *corev1.Pod) podUsage {
	return podUsage{
		req:     podRequests(pod, false),
		nonzero: podRequests(pod, true),
		ports:   podHostPorts(pod),
		owner:   controllerUID(pod),
	}
}

func (u *podUsage) equal(o *podUsage) bool {
	if u.owner != o.owner || len(u.ports) != len(o.ports) {
		return false
	}
	for i := range u.ports {
		if u.ports[i] != o.ports[i] {
			return false
		}
	}
	return u.req.equal(&o.req) && u.nonzero.equal(&o.nonzero)
}

// podHostPorts lists the host ports of the containers that run for the pod's
// whole life: regular containers and sidecars.
func podHostPorts(pod *corev1.Pod) []hostPort {
	var ports []hostPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
			if hp.ip == "" {
				hp.ip = wildcardIP
			}
			if hp.protocol == "" {
				hp.protocol = corev1.ProtocolTCP
			}
			ports = append(ports, hp)
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return ports
}

func controllerUID(pod *corev1.Pod) types.UID {
	for i := range pod.OwnerReferences {
		if r := &pod.OwnerReferences[i]; r.Controller != nil && *r.Controller {
			return r.UID
		}
	}
	return ""
}

// podInfo is a pending pod prepared for one scheduling attempt: everything the
// filters and scores need is parsed once here rather than once per node.
type podInfo struct {
	pod *corev1.Pod
	key string
	podUsage

	tolerations []corev1.Toleration
	// softTolerations are those that can tolerate PreferNoSchedule taints.
	softTolerations        []corev1.Toleration
	toleratesUnschedulable bool

	nodeSelector map[string]string
	required     *nodeSelector // nil when the pod has no required node affinity
	preferred    []preferredTerm

	volumes *podVolumes // nil when the pod has no claim
}

func newPodInfo(pod *corev1.Pod) *podInfo {
	p := &podInfo{
		pod:          pod,
		key:          podKey(pod),
		podUsage:     usageOf(pod),
		tolerations:  pod.Spec.Tolerations,
		nodeSelector: pod.Spec.NodeSelector,
	}
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			p.softTolerations = append(p.softTolerations, t)
		}
	}
	p.toleratesUnschedulable = tolerated(p.tolerations, &corev1.Taint{
		Key: taintUnschedulable, Effect: corev1.TaintEffectNoSchedule,
	})
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		if r := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			p.required = compileNodeSelector(r)
		}
		p.preferred = compilePreferred(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return p
}

func podKey(pod *corev1.Pod) string {
	return pod.Namespace + "/" + pod.Name
}
