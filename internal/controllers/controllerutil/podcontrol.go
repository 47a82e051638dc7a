package controllerutil

import (
	"context"
	"fmt"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// The events a PodControl records on the owner, as Kubernetes' controllers.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// PodNamePrefix returns the generateName of a workload's pods: "<name>-"
// unless that cannot prefix a valid pod name, as Kubernetes does.
func PodNamePrefix(name string) string {
	prefix := name + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"x")) != 0 {
		return name
	}
	return prefix
}

// Owner is a workload object that owns pods.
type Owner interface {
	metav1.Object
	runtime.Object
}

// PodControl creates and deletes a workload's pods, recording an event on
// the workload for each, as Kubernetes' PodControl does. Kind names the
// workload in logs and errors ("replicaset", "job").
type PodControl struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	Logger   *slog.Logger
	Kind     string
}

// CreatePod creates pod for owner. A terminating namespace refuses every
// creation; that is not a failure worth reporting or retrying: nil.
func (p PodControl) CreatePod(ctx context.Context, owner Owner, pod *v1.Pod) error {
	if len(pod.Labels) == 0 {
		return fmt.Errorf("create pod for %s %s/%s: template has no labels", p.Kind, owner.GetNamespace(), owner.GetName())
	}
	created, err := p.Client.CoreV1().Pods(owner.GetNamespace()).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			return nil
		}
		p.Recorder.Eventf(owner, v1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("create pod for %s %s/%s: %w", p.Kind, owner.GetNamespace(), owner.GetName(), err)
	}
	p.Logger.Debug("created pod", p.Kind, owner.GetNamespace()+"/"+owner.GetName(), "pod", created.Name)
	p.Recorder.Eventf(owner, v1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return nil
}

// DeletePod deletes pod of owner. The uid precondition keeps a stale cache
// from deleting a pod recreated under the same name. A pod already gone is
// the API's NotFound, unwrapped and without an event.
func (p PodControl) DeletePod(ctx context.Context, owner Owner, pod *v1.Pod) error {
	opts := metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(pod.UID))}
	if err := p.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opts); err != nil {
		if apierrors.IsNotFound(err) {
			return err
		}
		p.Recorder.Eventf(owner, v1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s/%s of %s %s: %w", pod.Namespace, pod.Name, p.Kind, owner.GetName(), err)
	}
	p.Logger.Debug("deleted pod", p.Kind, owner.GetNamespace()+"/"+owner.GetName(), "pod", pod.Name)
	p.Recorder.Eventf(owner, v1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
	return nil
}

// PatchPod is a Claimer's Patch for pods: a strategic merge patch through
// client.
func (p PodControl) PatchPod(ctx context.Context, obj metav1.Object, patch []byte) error {
	_, err := p.Client.CoreV1().Pods(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}
