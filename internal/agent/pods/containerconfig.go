package pods

import (
	"fmt"
	"hash/fnv"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/agent/pods/volume"
)

const etcHostsPath = "/etc/hosts"

// containerInputs is everything a container's CRI config is built from.
type containerInputs struct {
	pod       *v1.Pod
	container *v1.Container
	attempt   uint32
	imageRef  string   // the pulled image's ID
	env       []envVar // resolved
	volumes   map[string]string
	layout    layout
	qos       v1.PodQOSClass
	// memoryCapacity is the node's memory, for Burstable OOM scores.
	memoryCapacity int64
	// hostsFile is mounted at /etc/hosts when set.
	hostsFile string
}

// containerLabels are the four labels the agent finds a container by.
func containerLabels(pod *v1.Pod, name string) map[string]string {
	return map[string]string{
		labelPodName:       pod.Name,
		labelPodNamespace:  pod.Namespace,
		labelPodUID:        string(pod.UID),
		labelContainerName: name,
	}
}

// specHash covers the container fields whose change restarts a running
// container. Only the image may change in a pod's spec, and hashing only it
// keeps the value stable across agent versions: a changed hash kills the
// container, so adoption after an upgrade must not see one.
func specHash(c *v1.Container) string {
	h := fnv.New32a()
	h.Write([]byte(c.Image))
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// containerConfig builds a container's CRI config. It also returns the
// subPath directories that must exist before the container is created.
func containerConfig(in containerInputs) (*runtimeapi.ContainerConfig, []string, error) {
	pod, c := in.pod, in.container
	lookup := envLookup(in.env)
	mounts, subDirs, err := containerMounts(in, lookup)
	if err != nil {
		return nil, nil, err
	}
	security, err := containerSecurity(pod, c)
	if err != nil {
		return nil, nil, err
	}
	grace := int64(v1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: in.attempt},
		Image:      &runtimeapi.ImageSpec{Image: in.imageRef, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command, lookup),
		Args:       expandAll(c.Args, lookup),
		WorkingDir: c.WorkingDir,
		Mounts:     mounts,
		Labels:     containerLabels(pod, c.Name),
		Annotations: map[string]string{
			annotationHash:                     specHash(c),
			annotationRestartCount:             strconv.FormatUint(uint64(in.attempt), 10),
			annotationTerminationMessagePath:   c.TerminationMessagePath,
			annotationTerminationMessagePolicy: string(c.TerminationMessagePolicy),
			annotationGracePeriod:              strconv.FormatInt(grace, 10),
		},
		LogPath:   containerLogPath(c.Name, in.attempt),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		Tty:       c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c, in.qos, in.memoryCapacity),
			SecurityContext: security,
		},
	}
	for _, e := range in.env {
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: e.name, Value: []byte(e.value)})
	}
	return cfg, subDirs, nil
}

// containerMounts maps volumeMounts to host paths, then adds the pod's
// /etc/hosts and the termination message file.
func containerMounts(in containerInputs, lookup func(string) (string, bool)) ([]*runtimeapi.Mount, []string, error) {
	c := in.container
	var mounts []*runtimeapi.Mount
	var subDirs []string
	mountsHosts, mountsTermination := false, false
	for _, vm := range c.VolumeMounts {
		hostPath, ok := in.volumes[vm.Name]
		if !ok {
			return nil, nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, lookup)
		}
		if sub != "" {
			if path.IsAbs(sub) || hasBackstep(sub) {
				return nil, nil, fmt.Errorf("volume %q: subPath %q must be a relative path without '..'", vm.Name, sub)
			}
			hostPath = filepath.Join(hostPath, sub)
			subDirs = append(subDirs, hostPath)
		}
		mountsHosts = mountsHosts || vm.MountPath == etcHostsPath
		mountsTermination = mountsTermination || vm.MountPath == c.TerminationMessagePath
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath: vm.MountPath,
			HostPath:      hostPath,
			Readonly:      vm.ReadOnly || volume.ReadOnly(in.pod, vm.Name),
			Propagation:   toCRIPropagation(vm.MountPropagation),
		})
	}
	if in.hostsFile != "" && !mountsHosts {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: etcHostsPath, HostPath: in.hostsFile})
	}
	if c.TerminationMessagePath != "" && !mountsTermination {
		mounts = append(mounts, &runtimeapi.Mount{
			ContainerPath: c.TerminationMessagePath,
			HostPath:      in.layout.terminationFile(in.pod.UID, c.Name, in.attempt),
		})
	}
	return mounts, subDirs, nil
}

func hasBackstep(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

func toCRIPropagation(p *v1.MountPropagationMode) runtimeapi.MountPropagation {
	if p == nil {
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	}
	switch *p {
	case v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
	case v1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}
