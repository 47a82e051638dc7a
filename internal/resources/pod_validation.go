package resources

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod spec validation, after ValidatePodSpec in Kubernetes'
// pkg/apis/core/validation: the same field paths and, mostly, the same words.

// podSpecOptions says where a pod spec lives.
type podSpecOptions struct {
	// isPod is false for a controller's template, where hostPort may be unset
	// with hostNetwork because templates are not defaulted like pods.
	isPod bool
}

func validatePodSpec(spec *corev1.PodSpec, opts podSpecOptions, p *field.Path) field.ErrorList {
	vols, errs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, validateContainers(spec, vols, p.Child("containers"))...)
	errs = append(errs, validateInitContainers(spec, vols, p.Child("initContainers"))...)
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("ephemeralContainers"), "ephemeral containers are not supported"))
	}
	errs = append(errs, validateHostNetworkPorts(spec, opts, p)...)
	errs = append(errs, validateRestartPolicy(spec.RestartPolicy, p.Child("restartPolicy"))...)
	errs = append(errs, validateDNS(spec, p)...)
	errs = append(errs, validateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	errs = append(errs, validatePodSecurityContext(spec.SecurityContext, p.Child("securityContext"))...)
	for i, s := range spec.ImagePullSecrets {
		errs = append(errs, validateName(nameIsDNSSubdomain, s.Name, p.Child("imagePullSecrets").Index(i).Child("name"))...)
	}
	errs = append(errs, validateAffinity(spec.Affinity, p.Child("affinity"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, p.Child("tolerations"))...)
	errs = append(errs, validateTopologySpread(spec.TopologySpreadConstraints, p.Child("topologySpreadConstraints"))...)
	for i, g := range spec.ReadinessGates {
		errs = append(errs, validateQualifiedName(string(g.ConditionType), p.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	gates := map[string]bool{}
	for i, g := range spec.SchedulingGates {
		gp := p.Child("schedulingGates").Index(i).Child("name")
		errs = append(errs, validateQualifiedName(g.Name, gp)...)
		if gates[g.Name] {
			errs = append(errs, field.Duplicate(gp, g.Name))
		}
		gates[g.Name] = true
	}
	if spec.ServiceAccountName != "" {
		errs = append(errs, messages(p.Child("serviceAccountName"), spec.ServiceAccountName, nameIsDNSSubdomain(spec.ServiceAccountName, false))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, messages(p.Child("nodeName"), spec.NodeName, nameIsDNSSubdomain(spec.NodeName, false))...)
	}
	if spec.SchedulerName != "" {
		errs = append(errs, validateDNS1123Subdomain(spec.SchedulerName, p.Child("schedulerName"))...)
	}
	if v := spec.ActiveDeadlineSeconds; v != nil && (*v < 1 || *v > math.MaxInt32) {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *v, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if v := spec.TerminationGracePeriodSeconds; v != nil {
		errs = append(errs, validateNonnegative(*v, p.Child("terminationGracePeriodSeconds"))...)
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNS1123Label(spec.Hostname, p.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(spec.Subdomain, p.Child("subdomain"))...)
	}
	for i, ha := range spec.HostAliases {
		hp := p.Child("hostAliases").Index(i)
		errs = append(errs, validation.IsValidIP(hp.Child("ip"), ha.IP)...)
		for j, h := range ha.Hostnames {
			errs = append(errs, validateDNS1123Subdomain(h, hp.Child("hostnames").Index(j))...)
		}
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, validateDNS1123Subdomain(spec.PriorityClassName, p.Child("priorityClassName"))...)
	}
	if spec.RuntimeClassName != nil {
		errs = append(errs, validateDNS1123Subdomain(*spec.RuntimeClassName, p.Child("runtimeClassName"))...)
	}
	if pp := spec.PreemptionPolicy; pp != nil && !oneOf(*pp, corev1.PreemptLowerPriority, corev1.PreemptNever) {
		errs = append(errs, field.NotSupported(p.Child("preemptionPolicy"), *pp, []corev1.PreemptionPolicy{corev1.PreemptLowerPriority, corev1.PreemptNever}))
	}
	errs = append(errs, validateResourceList(spec.Overhead, p.Child("overhead"))...)
	if spec.Resources != nil {
		errs = append(errs, validateResources(spec.Resources, p.Child("resources"))...)
	}
	return errs
}

func validateRestartPolicy(rp corev1.RestartPolicy, p *field.Path) field.ErrorList {
	valid := []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	switch {
	case rp == "":
		return field.ErrorList{field.Required(p, "")}
	case !oneOf(rp, valid...):
		return field.ErrorList{field.NotSupported(p, rp, valid)}
	}
	return nil
}

func validateContainers(spec *corev1.PodSpec, vols map[string]bool, p *field.Path) field.ErrorList {
	if len(spec.Containers) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		ip := p.Index(i)
		errs = append(errs, validateContainer(c, vols, ip)...)
		if c.Name != "" && names[c.Name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), c.Name))
		}
		names[c.Name] = true
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(ip.Child("restartPolicy"), "may not be set for non-init containers"))
		}
		if len(c.RestartPolicyRules) > 0 {
			errs = append(errs, field.Forbidden(ip.Child("restartPolicyRules"), "may not be set for non-init containers"))
		}
		errs = append(errs, validateProbe(c.LivenessProbe, ip.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.ReadinessProbe, ip.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.StartupProbe, ip.Child("startupProbe"))...)
		errs = append(errs, validateProbeKinds(c, ip)...)
		errs = append(errs, validateLifecycle(c.Lifecycle, spec.TerminationGracePeriodSeconds, ip.Child("lifecycle"))...)
	}
	return append(errs, validateUniqueHostPorts(spec.Containers, p)...)
}

func validateInitContainers(spec *corev1.PodSpec, vols map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for _, c := range spec.Containers {
		names[c.Name] = true
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		ip := p.Index(i)
		errs = append(errs, validateContainer(c, vols, ip)...)
		if c.Name != "" && names[c.Name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), c.Name))
		}
		names[c.Name] = true
		sidecar := false
		if rp := c.RestartPolicy; rp != nil {
			if *rp != corev1.ContainerRestartPolicyAlways {
				errs = append(errs, field.NotSupported(ip.Child("restartPolicy"), *rp, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
			}
			sidecar = *rp == corev1.ContainerRestartPolicyAlways
		}
		if len(c.RestartPolicyRules) > 0 {
			errs = append(errs, field.Forbidden(ip.Child("restartPolicyRules"), "container restart rules are not supported"))
		}
		if !sidecar {
			// Only restartable init containers (sidecars) run alongside the others.
			for _, f := range []struct {
				name string
				set  bool
			}{
				{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
				{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil},
			} {
				if f.set {
					errs = append(errs, field.Forbidden(ip.Child(f.name), "may not be set for init containers without restartPolicy=Always"))
				}
			}
			continue
		}
		errs = append(errs, validateProbe(c.LivenessProbe, ip.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.ReadinessProbe, ip.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.StartupProbe, ip.Child("startupProbe"))...)
		errs = append(errs, validateProbeKinds(c, ip)...)
		errs = append(errs, validateLifecycle(c.Lifecycle, spec.TerminationGracePeriodSeconds, ip.Child("lifecycle"))...)
	}
	return append(errs, validateUniqueHostPorts(spec.InitContainers, p)...)
}

// validateContainer checks what every kind of container shares.
func validateContainer(c *corev1.Container, vols map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		errs = append(errs, validateDNS1123Label(c.Name, p.Child("name"))...)
	}
	errs = append(errs, validateImage(c.Image, p.Child("image"))...)
	errs = append(errs, validateContainerPorts(c.Ports, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, vols, p.Child("volumeMounts"))...)
	for i, d := range c.VolumeDevices {
		dp := p.Child("volumeDevices").Index(i)
		if !vols[d.Name] {
			errs = append(errs, field.NotFound(dp.Child("name"), d.Name))
		}
		if d.DevicePath == "" {
			errs = append(errs, field.Required(dp.Child("devicePath"), ""))
		}
	}
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	switch {
	case c.ImagePullPolicy == "":
		errs = append(errs, field.Required(p.Child("imagePullPolicy"), ""))
	case !oneOf(c.ImagePullPolicy, pullPolicies...):
		errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), c.ImagePullPolicy, pullPolicies))
	}
	tmp := []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
	switch {
	case c.TerminationMessagePolicy == "":
		errs = append(errs, field.Required(p.Child("terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'"))
	case !oneOf(c.TerminationMessagePolicy, tmp...):
		errs = append(errs, field.NotSupported(p.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, tmp))
	}
	return append(errs, validateSecurityContext(c.SecurityContext, p.Child("securityContext"))...)
}

var pullPolicies = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}

// validateImage requires a reference that a container runtime can pull.
func validateImage(image string, p *field.Path) field.ErrorList {
	switch {
	case image == "":
		return field.ErrorList{field.Required(p, "")}
	case strings.TrimSpace(image) != image:
		return field.ErrorList{field.Invalid(p, image, "must not have leading or trailing whitespace")}
	}
	if _, err := parseImageRef(image); err != nil {
		return field.ErrorList{field.Invalid(p, image, err.Error())}
	}
	return nil
}

func validateContainerPorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			if msgs := validation.IsValidPortName(port.Name); len(msgs) > 0 {
				errs = append(errs, messages(ip.Child("name"), port.Name, msgs)...)
			} else if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			errs = append(errs, validatePortNum(port.ContainerPort, ip.Child("containerPort"))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, validatePortNum(port.HostPort, ip.Child("hostPort"))...)
		}
		if port.HostIP != "" {
			errs = append(errs, validation.IsValidIP(ip.Child("hostIP"), port.HostIP)...)
		}
		errs = append(errs, validateProtocol(port.Protocol, ip.Child("protocol"))...)
	}
	return errs
}

// validateUniqueHostPorts: two containers cannot bind one host port.
func validateUniqueHostPorts(cs []corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for ci, c := range cs {
		for pi, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
			if seen[key] {
				errs = append(errs, field.Duplicate(p.Index(ci).Child("ports").Index(pi).Child("hostPort"), key))
			}
			seen[key] = true
		}
	}
	return errs
}

func validateHostNetworkPorts(spec *corev1.PodSpec, opts podSpecOptions, p *field.Path) field.ErrorList {
	if !spec.HostNetwork {
		return nil
	}
	var errs field.ErrorList
	for ci, c := range spec.Containers {
		for pi, port := range c.Ports {
			if (opts.isPod || port.HostPort != 0) && port.HostPort != port.ContainerPort {
				errs = append(errs, field.Invalid(p.Child("containers").Index(ci).Child("ports").Index(pi).Child("hostPort"),
					port.HostPort, "must match `containerPort` when `hostNetwork` is true"))
			}
		}
	}
	return errs
}

var standardContainerResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

func validateContainerResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	errs := validateQualifiedName(string(name), p)
	if !strings.Contains(string(name), "/") {
		if !oneOf(name, standardContainerResources...) && !isHugePageResource(name) {
			errs = append(errs, field.Invalid(p, name, "must be a standard resource for containers"))
		}
	} else if isNativeResource(name) {
		errs = append(errs, field.Invalid(p, name, "must be a standard resource for containers"))
	}
	return errs
}

// validateResources checks requests and limits: non-negative, requests no
// more than limits, and equal for resources that cannot be overcommitted.
func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	lp, rp := p.Child("limits"), p.Child("requests")
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		kp := lp.Key(string(name))
		errs = append(errs, validateContainerResourceName(name, kp)...)
		errs = append(errs, validateResourceQuantity(name, r.Limits[name], kp)...)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		q := r.Requests[name]
		kp := rp.Key(string(name))
		errs = append(errs, validateContainerResourceName(name, kp)...)
		errs = append(errs, validateResourceQuantity(name, q, kp)...)
		lim, ok := r.Limits[name]
		switch {
		case ok && q.Cmp(lim) != 0 && !isOvercommitAllowed(name):
			errs = append(errs, field.Invalid(kp, q.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
		case ok && q.Cmp(lim) > 0:
			errs = append(errs, field.Invalid(kp, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		case !ok && !isOvercommitAllowed(name):
			errs = append(errs, field.Required(lp, "Limit must be set for non overcommitable resources"))
		}
	}
	claims := map[string]bool{}
	for i, c := range r.Claims {
		cp := p.Child("claims").Index(i).Child("name")
		if c.Name == "" {
			errs = append(errs, field.Required(cp, ""))
		} else if claims[c.Name] {
			errs = append(errs, field.Duplicate(cp, c.Name))
		}
		claims[c.Name] = true
	}
	return errs
}
