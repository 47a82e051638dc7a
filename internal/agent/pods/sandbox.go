package pods

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/agent/pods/fieldpath"
)

// maxHostnameLen is the longest hostname Linux and DNS labels allow.
const maxHostnameLen = 63

// sandboxLabels are the pod's labels plus the three the agent finds the
// sandbox by (docs/agent.md), as the kubelet does.
func sandboxLabels(pod *v1.Pod) map[string]string {
	labels := make(map[string]string, len(pod.Labels)+3)
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[labelPodName] = pod.Name
	labels[labelPodNamespace] = pod.Namespace
	labels[labelPodUID] = string(pod.UID)
	return labels
}

// podHostname is the pod's hostname: spec.hostname or its name, cut to
// 63 characters without a trailing '-' or '.'.
func podHostname(pod *v1.Pod) string {
	name := pod.Spec.Hostname
	if name == "" {
		name = pod.Name
	}
	if len(name) > maxHostnameLen {
		name = strings.TrimRight(name[:maxHostnameLen], "-.")
	}
	return name
}

// sandboxConfig builds the PodSandboxConfig of attempt for pod.
func sandboxConfig(pod *v1.Pod, attempt uint32, l layout, dns dnsSettings) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Uid:       string(pod.UID),
			Attempt:   attempt,
		},
		LogDirectory: l.podLogDir(pod.Namespace, pod.Name, pod.UID),
		DnsConfig:    dnsConfig(pod, dns),
		PortMappings: portMappings(pod),
		Labels:       sandboxLabels(pod),
		Annotations:  copyMap(pod.Annotations),
		Linux:        linuxSandbox(pod, l),
	}
	// A host-network pod keeps the node's hostname.
	if !pod.Spec.HostNetwork {
		cfg.Hostname = podHostname(pod)
	}
	return cfg
}

// portMappings publishes the containers' hostPorts.
func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			out = append(out, &runtimeapi.PortMapping{
				Protocol:      toCRIProtocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	return out
}

func toCRIProtocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

// linuxSandbox puts the sandbox in the pod's cgroup under the agent's
// cgroup root and applies the pod-level security context.
func linuxSandbox(pod *v1.Pod, l layout) *runtimeapi.LinuxPodSandboxConfig {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &v1.PodSecurityContext{}
	}
	sc := &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions:   namespaceOptions(pod),
		SupplementalGroups: supplementalGroups(psc),
		Privileged:         anyPrivileged(pod),
		Seccomp:            seccompProfile(psc.SeccompProfile),
	}
	if psc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
	}
	if psc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
	}
	cfg := &runtimeapi.LinuxPodSandboxConfig{
		CgroupParent:    l.cgroupParent(pod.UID),
		SecurityContext: sc,
	}
	if len(psc.Sysctls) > 0 {
		cfg.Sysctls = make(map[string]string, len(psc.Sysctls))
		for _, s := range psc.Sysctls {
			cfg.Sysctls[s.Name] = s.Value
		}
	}
	return cfg
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sandboxRef is the current sandbox and the config it was made from,
// which PullImage and CreateContainer take.
type sandboxRef struct {
	id     string
	config *runtimeapi.PodSandboxConfig
	addr   fieldpath.Addresses
}

func (m *Manager) sandboxRef(pod *v1.Pod, rt *podRuntime) sandboxRef {
	s := rt.sandbox()
	return sandboxRef{
		id:     s.Id,
		config: sandboxConfig(pod, s.GetMetadata().GetAttempt(), m.layout, m.dnsSettings()),
		addr:   m.podAddresses(pod, rt),
	}
}

// createSandbox runs a new sandbox for pod.
func (m *Manager) createSandbox(ctx context.Context, pod *v1.Pod, attempt uint32) error {
	cfg := sandboxConfig(pod, attempt, m.layout, m.dnsSettings())
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	id, err := m.cfg.Runtime.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		return fmt.Errorf("run sandbox: %w", err)
	}
	m.log.Info("pod sandbox started", "pod", podRef(pod), "sandbox", id, "attempt", attempt)
	return nil
}

// stopSandboxes stops every ready sandbox of the pod (the runtime tears
// its network down).
func (m *Manager) stopSandboxes(ctx context.Context, rt *podRuntime) error {
	for _, s := range rt.sandboxes {
		if s.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if err := m.cfg.Runtime.StopPodSandbox(ctx, s.Id); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", s.Id, err)
		}
	}
	return nil
}
