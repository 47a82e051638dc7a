package pods

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"wharf.dev/wharf/internal/agent/pods/probe"
)

// The kubelet's event reasons, which `kubectl describe pod` users know.
const (
	eventPulling        = "Pulling"
	eventPulled         = "Pulled"
	eventFailed         = "Failed"
	eventBackOff        = "BackOff"
	eventCreated        = "Created"
	eventStarted        = "Started"
	eventKilling        = "Killing"
	eventUnhealthy      = "Unhealthy"
	eventFailedMount    = "FailedMount"
	eventSandboxFailed  = "FailedCreatePodSandBox"
	eventSandboxChanged = "SandboxChanged"
	eventHookFailed     = "FailedPreStopHook"
	eventPostStartFail  = "FailedPostStartHook"
)

func newBroadcaster(ctx context.Context, client kubernetes.Interface) record.EventBroadcaster {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return b
}

func eventScheme() *runtime.Scheme { return scheme.Scheme }

// containerEvent records an event about one container of pod, pointing
// at it with a field path like the kubelet's.
func (m *Manager) containerEvent(pod *v1.Pod, container, eventType, reason, format string, args ...any) {
	ref := &v1.ObjectReference{
		Kind: "Pod", APIVersion: "v1",
		Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
	}
	if container != "" {
		ref.FieldPath = fieldPathOf(pod, container)
	}
	m.recorder.Event(ref, eventType, reason, fmt.Sprintf(format, args...))
}

func (m *Manager) podEvent(pod *v1.Pod, eventType, reason, format string, args ...any) {
	m.containerEvent(pod, "", eventType, reason, format, args...)
}

func fieldPathOf(pod *v1.Pod, name string) string {
	for i, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.initContainers{%s}", pod.Spec.InitContainers[i].Name)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}

// unhealthy reports a failed probe as the kubelet does.
func (m *Manager) unhealthy(pod *v1.Pod, container string, kind probe.Kind, output string) {
	m.containerEvent(pod, container, v1.EventTypeWarning, eventUnhealthy, "%s probe failed: %s", kind, output)
}
