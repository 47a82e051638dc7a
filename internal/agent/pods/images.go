package pods

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// failureSeq numbers failures that have no container to name them, so
// that each one advances a back-off.
var failureSeq atomic.Uint64

func nextFailure(kind string) string {
	return kind + ":" + strconv.FormatUint(failureSeq.Add(1), 10)
}

// ensureImage makes the container's image present as its pull policy says
// and returns the image's ID. When it cannot, it records the waiting
// reason (ErrImagePull, ImagePullBackOff, ...) and says how long to wait.
func (m *Manager) ensureImage(ctx context.Context, pod *v1.Pod, c *v1.Container, sandbox *runtimeapi.PodSandboxConfig) (string, bool, time.Duration) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	resp, err := m.cfg.Images.ImageStatus(ctx, spec, false)
	if err != nil {
		m.setReason(pod, c, reasonImageInspect, fmt.Sprintf("Failed to inspect image %q: %v", c.Image, err), "")
		return "", false, pendingResync
	}
	present := resp.GetImage() != nil
	switch c.ImagePullPolicy {
	case v1.PullNever:
		if !present {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			m.setReason(pod, c, reasonErrImageNeverPull, msg, "")
			m.containerEvent(pod, c.Name, v1.EventTypeWarning, reasonErrImageNeverPull, "%s", msg)
			return "", false, pendingResync
		}
		return resp.GetImage().GetId(), true, 0
	case v1.PullAlways:
	default:
		if present {
			m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventPulled, "Container image %q already present on machine", c.Image)
			return resp.GetImage().GetId(), true, 0
		}
	}

	key := backOffKey(pod.UID, "image:"+c.Image)
	if wait := m.pulls.remaining(key); wait > 0 {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		if last, ok := m.reasons.get(pod.UID, c.Name); ok && last.reason == reasonErrImagePull {
			msg += ": " + reasonErrImagePull + ": " + last.message
		} else if ok && last.reason == reasonImagePullBackOff {
			msg = last.message
		}
		m.setReason(pod, c, reasonImagePullBackOff, msg, "")
		m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventBackOff, "Back-off pulling image %q", c.Image)
		return "", false, wait
	}
	m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventPulling, "Pulling image %q", c.Image)
	start := m.clock.Now()
	ref, err := m.cfg.Images.PullImage(ctx, spec, nil, sandbox)
	if err != nil {
		wait, _ := m.pulls.failed(key, nextFailure("pull"), false)
		msg := grpcMessage(err)
		m.setReason(pod, c, reasonErrImagePull, msg, "")
		m.containerEvent(pod, c.Name, v1.EventTypeWarning, eventFailed, "Failed to pull image %q: %s", c.Image, msg)
		m.log.Info("image pull failed", "pod", podRef(pod), "container", c.Name, "image", c.Image, "err", err)
		return "", false, max(wait, time.Second)
	}
	m.pulls.reset(key)
	m.containerEvent(pod, c.Name, v1.EventTypeNormal, eventPulled, "Successfully pulled image %q in %s", c.Image, m.clock.Since(start).Round(time.Millisecond))
	if ref == "" {
		ref = c.Image
	}
	return ref, true, 0
}

// pullsAhead says whether starting these containers pulls an image first:
// a policy of Always, or an image not present (or whose status the
// runtime cannot tell, which ensureImage reports).
func (m *Manager) pullsAhead(ctx context.Context, starts []startAction) bool {
	for _, s := range starts {
		switch s.spec.ImagePullPolicy {
		case v1.PullAlways:
			return true
		case v1.PullNever:
			continue
		}
		resp, err := m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: s.spec.Image, UserSpecifiedImage: s.spec.Image}, false)
		if err != nil || resp.GetImage() == nil {
			return true
		}
	}
	return false
}

// setReason records why container c of pod is waiting.
func (m *Manager) setReason(pod *v1.Pod, c *v1.Container, reason, message, cause string) {
	m.reasons.set(pod.UID, c.Name, waiting{reason: reason, message: message, cause: cause})
}

// grpcMessage is a CRI error's message without gRPC's "rpc error: code =
// ... desc =" wrapping, as the kubelet reports it.
func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}
