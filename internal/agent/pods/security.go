package pods

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The paths the kubelet masks and makes read-only in unprivileged
// containers (k8s.io/kubernetes/pkg/securitycontext).
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// namespaceOptions says which namespaces a pod shares with the node.
func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		ns.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	return ns
}

// supplementalGroups are the pod's extra groups; fsGroup joins them so
// that the container can use group-owned volumes.
func supplementalGroups(psc *v1.PodSecurityContext) []int64 {
	if psc == nil {
		return nil
	}
	groups := append([]int64{}, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	if len(groups) == 0 {
		return nil
	}
	return groups
}

// containerSecurity merges the pod's and the container's security
// contexts (the container's fields win) into CRI's.
func containerSecurity(pod *v1.Pod, c *v1.Container) (*runtimeapi.LinuxContainerSecurityContext, error) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &v1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &v1.SecurityContext{}
	}
	out := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions:   namespaceOptions(pod),
		SupplementalGroups: supplementalGroups(psc),
		Privileged:         sc.Privileged != nil && *sc.Privileged,
		ReadonlyRootfs:     sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
		NoNewPrivs:         sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
	}
	if uid := pick(sc.RunAsUser, psc.RunAsUser); uid != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *uid}
	}
	if gid := pick(sc.RunAsGroup, psc.RunAsGroup); gid != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *gid}
	}
	if nonRoot := pick(sc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot != nil && *nonRoot && out.RunAsUser != nil && out.RunAsUser.Value == 0 {
		return nil, fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
	}
	if caps := sc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, a := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(a))
		}
		for _, d := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(d))
		}
	}
	if p := seccompProfile(sc.SeccompProfile, psc.SeccompProfile); p != nil {
		out.Seccomp = p
	}
	unmasked := sc.ProcMount != nil && *sc.ProcMount == v1.UnmaskedProcMount
	if !out.Privileged && !unmasked {
		out.MaskedPaths = defaultMaskedPaths
		out.ReadonlyPaths = defaultReadonlyPaths
	}
	return out, nil
}

// seccompProfile maps the API's profile (container's, else pod's); none
// leaves the runtime's default.
func seccompProfile(profiles ...*v1.SeccompProfile) *runtimeapi.SecurityProfile {
	for _, p := range profiles {
		if p == nil {
			continue
		}
		switch p.Type {
		case v1.SeccompProfileTypeRuntimeDefault:
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		case v1.SeccompProfileTypeUnconfined:
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		case v1.SeccompProfileTypeLocalhost:
			ref := ""
			if p.LocalhostProfile != nil {
				ref = *p.LocalhostProfile
			}
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
		}
	}
	return nil
}

// anyPrivileged reports whether some container of pod is privileged; the
// sandbox must then be privileged too.
func anyPrivileged(pod *v1.Pod) bool {
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}

func pick[T any](first, second *T) *T {
	if first != nil {
		return first
	}
	return second
}
