package pods

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Local ephemeral storage limits, enforced as the kubelet's eviction
// manager does: every resync the agent measures, for each running pod
// with a limit, its disk-backed emptyDirs, its containers' writable layers
// (from the runtime's stats) and their logs. A pod beyond a limit is
// evicted: its containers are stopped, it fails with reason Evicted and
// the DisruptionTarget condition, and an Evicted event says which limit.
// The checks and messages are the kubelet's, in its order: an emptyDir's
// sizeLimit, the pod's total (the sum of its containers' limits), then
// one container's limit.

const (
	reasonEvicted              = "Evicted"
	reasonTerminationByKubelet = "TerminationByKubelet"
)

// evictions holds the pods the storage check decided to evict, until their
// workers do it.
type evictions struct {
	mu sync.Mutex
	m  map[types.UID]string
}

func (e *evictions) set(uid types.UID, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[types.UID]string{}
	}
	e.m[uid] = msg
}

func (e *evictions) take(uid types.UID) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg, ok := e.m[uid]
	delete(e.m, uid)
	return msg, ok
}

// checkEphemeralStorage measures the pods with limits and marks those
// beyond one for eviction.
func (m *Manager) checkEphemeralStorage(ctx context.Context) {
	for _, o := range m.podInformer.GetStore().List() {
		pod := o.(*v1.Pod)
		if pod.Spec.NodeName != m.cfg.NodeName || pod.DeletionTimestamp != nil || terminal(m.statuses.current(pod).Phase) || !hasStorageLimits(pod) {
			continue
		}
		rt, err := m.reader.read(ctx, pod.UID)
		if err != nil {
			continue
		}
		use := m.storageUse(ctx, pod, rt)
		if msg, over := storageViolation(pod, use); over {
			m.log.Info("evicting a pod over its ephemeral storage limit", "pod", podRef(pod), "reason", msg)
			m.evictions.set(pod.UID, msg)
			m.wake(pod.UID)
		}
	}
}

// storageUse is what a pod uses of the node's disk, in bytes.
type storageUse struct {
	emptyDirs  map[string]int64
	containers map[string]int64 // writable layer and logs
}

func (m *Manager) storageUse(ctx context.Context, pod *v1.Pod, rt *podRuntime) storageUse {
	u := storageUse{emptyDirs: map[string]int64{}, containers: map[string]int64{}}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium != v1.StorageMediumMemory {
			u.emptyDirs[v.Name] = diskUsage(m.volumes.Dir(pod.UID, v.Name))
		}
	}
	for _, c := range rt.containers {
		if !c.running() {
			continue
		}
		if st, err := m.cfg.Runtime.ContainerStats(ctx, c.id); err == nil && st.GetWritableLayer().GetUsedBytes() != nil {
			u.containers[c.name] += int64(st.WritableLayer.UsedBytes.Value)
		}
		if c.logPath != "" {
			u.containers[c.name] += diskUsage(c.logPath)
		}
	}
	return u
}

func hasStorageLimits(pod *v1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium != v1.StorageMediumMemory && v.EmptyDir.SizeLimit != nil {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		if _, ok := c.Resources.Limits[v1.ResourceEphemeralStorage]; ok {
			return true
		}
	}
	return false
}

// storageViolation returns the kubelet's message for the first limit use
// exceeds.
func storageViolation(pod *v1.Pod, use storageUse) (string, bool) {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Sign() <= 0 || v.EmptyDir.Medium == v1.StorageMediumMemory {
			continue
		}
		if use.emptyDirs[v.Name] > v.EmptyDir.SizeLimit.Value() {
			return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Name, v.EmptyDir.SizeLimit.String()), true
		}
	}
	var podLimit, podUse int64
	for _, c := range pod.Spec.Containers {
		if l, ok := c.Resources.Limits[v1.ResourceEphemeralStorage]; ok {
			podLimit += l.Value()
		}
		podUse += use.containers[c.Name]
	}
	for _, n := range use.emptyDirs {
		podUse += n
	}
	if podLimit > 0 && podUse > podLimit {
		return fmt.Sprintf("Pod ephemeral local storage usage exceeds the total limit of containers %s. ", resource.NewQuantity(podLimit, resource.BinarySI)), true
	}
	for _, c := range pod.Spec.Containers {
		if l, ok := c.Resources.Limits[v1.ResourceEphemeralStorage]; ok && use.containers[c.Name] > l.Value() {
			return fmt.Sprintf("Container %s exceeded its local ephemeral storage limit %q. ", c.Name, l.String()), true
		}
	}
	return "", false
}

// evict stops a pod the storage check marked and fails it as the kubelet's
// eviction manager does.
func (m *Manager) evict(ctx context.Context, pod *v1.Pod, rt *podRuntime, msg string) (syncResult, error) {
	m.podEvent(pod, v1.EventTypeWarning, reasonEvicted, "%s", msg)
	return m.failPod(ctx, pod, rt, reasonEvicted, msg, &v1.PodCondition{
		Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: reasonTerminationByKubelet, Message: msg,
		LastTransitionTime: metav1.NewTime(m.clock.Now().Truncate(time.Second)),
	})
}

// diskUsage is the space the files under path take on disk, as du counts
// it (allocated blocks, hard links once).
func diskUsage(path string) int64 {
	var total int64
	seen := map[uint64]bool{}
	// Unreadable or vanishing entries are skipped: the figure is a
	// measurement, not an inventory.
	_ = filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			total += st.Blocks * 512
		}
		return nil
	})
	return total
}
