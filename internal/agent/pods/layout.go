package pods

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// The kubelet's labels and annotations on CRI objects: tools (crictl,
// the agent's log and exec server) find a pod's objects by them.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"

	annotationHash                     = "io.kubernetes.container.hash"
	annotationRestartCount             = "io.kubernetes.container.restartCount"
	annotationTerminationMessagePath   = "io.kubernetes.container.terminationMessagePath"
	annotationTerminationMessagePolicy = "io.kubernetes.container.terminationMessagePolicy"
	annotationGracePeriod              = "io.kubernetes.pod.terminationGracePeriod"
)

// layout names the agent's files and cgroups of a pod (docs/agent.md).
type layout struct {
	stateDir   string
	cgroupRoot string
}

// podsDir holds one directory per pod UID.
func (l layout) podsDir() string { return VolumesRoot(l.stateDir) }

// VolumesRoot is the directory under a node's state dir that holds its
// pods' volumes: the agent mounts memory emptyDirs below it, so it must
// be a shared mount point when containerd starts (containerd.Config's
// SharedDirs).
func VolumesRoot(stateDir string) string { return filepath.Join(stateDir, "pods") }

func (l layout) podDir(uid types.UID) string { return filepath.Join(l.podsDir(), string(uid)) }

// hostsFile is the /etc/hosts the agent writes for a pod.
func (l layout) hostsFile(uid types.UID) string { return filepath.Join(l.podDir(uid), "etc-hosts") }

// terminationFile is mounted at a container's terminationMessagePath; one
// per attempt so that a restart does not inherit the last message.
func (l layout) terminationFile(uid types.UID, container string, attempt uint32) string {
	return filepath.Join(l.podDir(uid), "containers", container, strconv.FormatUint(uint64(attempt), 10))
}

func (l layout) logsDir() string { return filepath.Join(l.stateDir, "logs") }

// podLogDir is the sandbox's LogDirectory.
func (l layout) podLogDir(namespace, name string, uid types.UID) string {
	return filepath.Join(l.logsDir(), fmt.Sprintf("%s_%s_%s", namespace, name, uid))
}

// containerLogPath is relative to the pod's log directory, as CRI wants it.
func containerLogPath(container string, attempt uint32) string {
	return filepath.Join(container, fmt.Sprintf("%d.log", attempt))
}

// cgroupParent is the sandbox's cgroup, relative to each controller's root.
func (l layout) cgroupParent(uid types.UID) string {
	return path.Join("/", l.cgroupRoot, "pod"+string(uid))
}
