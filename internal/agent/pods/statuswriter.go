package pods

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// written is the status the agent last wrote for a pod, and the
// resourceVersion of the pod it patched: while the informer still has
// that version, its status is stale and the written one is current.
type written struct {
	status         v1.PodStatus
	basedOnVersion string
}

type statusCache struct {
	mu sync.Mutex
	m  map[types.UID]written
}

func newStatusCache() *statusCache { return &statusCache{m: map[types.UID]written{}} }

func (c *statusCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, uid)
}

// current is the pod's status as the agent last knew it.
func (c *statusCache) current(pod *v1.Pod) v1.PodStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.m[pod.UID]; ok && w.basedOnVersion == pod.ResourceVersion {
		return w.status
	}
	return pod.Status
}

func (c *statusCache) remember(pod *v1.Pod, s v1.PodStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[pod.UID] = written{status: s, basedOnVersion: pod.ResourceVersion}
}

// writeStatus patches the pod's status when it differs from what the API
// has. A strategic merge patch of the status alone, like the kubelet's,
// never overwrites spec or metadata that changed meanwhile, and needs no
// retry on conflicts.
func (m *Manager) writeStatus(ctx context.Context, pod *v1.Pod, s v1.PodStatus) error {
	old := m.statuses.current(pod)
	if apiequality.Semantic.DeepEqual(old, s) {
		return nil
	}
	patch, err := statusPatch(pod.UID, old, s)
	if err != nil {
		return fmt.Errorf("pod %q: status patch: %w", podRef(pod), err)
	}
	_, err = m.cfg.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %q: write status: %w", podRef(pod), err)
	}
	m.statuses.remember(pod, s)
	m.log.Debug("pod status written", "pod", podRef(pod), "phase", s.Phase)
	return nil
}

// statusPatch is the two-way strategic merge patch from old to new, with
// the pod's UID so that the patch cannot land on a namesake.
func statusPatch(uid types.UID, old, cur v1.PodStatus) ([]byte, error) {
	oldJSON, err := json.Marshal(v1.Pod{Status: old})
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: cur})
	if err != nil {
		return nil, err
	}
	return strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Pod{})
}
