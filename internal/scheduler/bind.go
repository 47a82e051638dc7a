package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const reasonFailedScheduling = "FailedScheduling"

// acquire takes an API call slot; false means ctx ended first.
func (s *Scheduler) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		s.calls.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Scheduler) release() {
	<-s.slots
	s.calls.Done()
}

// bindAsync posts the binding in the background; the pod already counts
// against the node in the cache.
func (s *Scheduler) bindAsync(ctx context.Context, e *entry, p *podInfo, node string) {
	if !s.acquire(ctx) {
		s.cache.forget(p.key, node)
		return
	}
	go func() {
		defer s.release()
		err := s.bindVolumes(ctx, p, node)
		volumeErr := err != nil
		if err == nil {
			err = s.bind(ctx, p.pod, node)
		}
		switch {
		case err == nil:
			s.cache.finishBinding(p.key, s.cfg.now().Add(s.cfg.assumeTTL))
			s.queue.done(e)
			if s.recorder != nil {
				s.recorder.Eventf(p.pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s to %s", p.key, node)
			}
		case ctx.Err() != nil:
			// Shutting down: the next leader or run starts from the informers.
			s.cache.forget(p.key, node)
		case !volumeErr && !retryable(err):
			// The pod is gone or someone bound it first: the informer will
			// tell the truth, nothing to retry.
			s.logger.Debug("binding not needed any more", "pod", p.key, "node", node, "err", err)
			s.cache.forget(p.key, node)
			s.queue.done(e)
		default:
			s.bindErrors.Add(1)
			s.logger.Warn("binding failed, will retry", "pod", p.key, "node", node, "err", err)
			s.cache.forget(p.key, node)
			// The room it held is free again for the others.
			s.queue.moveAll()
			s.queue.retry(e)
			if s.recorder != nil {
				s.recorder.Eventf(p.pod, corev1.EventTypeWarning, reasonFailedScheduling, "Binding rejected: %v", err)
			}
		}
	}()
}

func (s *Scheduler) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.bindTimeout)
	defer cancel()
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bind pod %s/%s to node %q: %w", pod.Namespace, pod.Name, node, err)
	}
	return nil
}

// retryable tells a failed bind worth retrying from one that lost a race:
// 404 when the pod is gone, 409 when it is already bound or was replaced by
// a pod of the same name (UID precondition).
func retryable(err error) bool {
	return !apierrors.IsNotFound(err) && !apierrors.IsConflict(err)
}

// handleUnschedulable parks the pod and, when the reason is new, tells the
// user through the PodScheduled condition and a FailedScheduling event.
func (s *Scheduler) handleUnschedulable(ctx context.Context, e *entry, pod *corev1.Pod, message string) {
	newMessage := s.queue.unschedulable(e, message)
	if s.logger.Enabled(ctx, slog.LevelDebug) {
		s.logger.Debug("pod unschedulable", "pod", e.key, "message", message)
	}
	if !newMessage || hasUnschedulableCondition(pod, message) {
		return
	}
	if s.recorder != nil {
		s.recorder.Event(pod, corev1.EventTypeWarning, reasonFailedScheduling, message)
	}
	if !s.acquire(ctx) {
		return
	}
	go func() {
		defer s.release()
		if err := s.setUnschedulable(ctx, pod, message); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			s.logger.Warn("cannot set PodScheduled condition", "pod", e.key, "err", err)
		}
	}()
}

func hasUnschedulableCondition(pod *corev1.Pod, message string) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				c.Message == message
		}
	}
	return false
}

// setUnschedulable patches the status subresource with a strategic merge
// patch: conditions merge by type, so no read-modify-write race with the
// other writers of the pod status.
func (s *Scheduler) setUnschedulable(ctx context.Context, pod *corev1.Pod, message string) error {
	cond := corev1.PodCondition{
		Type:               corev1.PodScheduled,
		Status:             corev1.ConditionFalse,
		Reason:             corev1.PodReasonUnschedulable,
		Message:            message,
		LastTransitionTime: metav1.NewTime(s.cfg.now()),
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			cond.LastTransitionTime = c.LastTransitionTime // no transition
		}
	}
	patch, err := json.Marshal(map[string]any{
		"status": map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		return fmt.Errorf("encode status patch for pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType,
		patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("set PodScheduled=False on pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
