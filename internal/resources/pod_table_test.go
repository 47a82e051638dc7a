package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: "c", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
}

func TestPodStatusCells(t *testing.T) {
	twoInits := []corev1.Container{{Name: "i1"}, {Name: "i2"}}
	deleted := metav1.NewTime(testNow)
	tests := []struct {
		name                   string
		spec                   corev1.PodSpec
		status                 corev1.PodStatus
		deleting               bool
		ready, reason, restart string
	}{
		{name: "pending", status: corev1.PodStatus{Phase: corev1.PodPending}, ready: "0/1", reason: "Pending", restart: "0"},
		{name: "running", status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running(true)}},
			ready: "1/1", reason: "Running", restart: "0"},
		{name: "running not ready", status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running(false)}},
			ready: "0/1", reason: "Running", restart: "0"},
		{name: "container creating", status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: waiting("ContainerCreating")}}},
			ready: "0/1", reason: "ContainerCreating", restart: "0"},
		{name: "crash loop with restarts", status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: waiting("CrashLoopBackOff"), RestartCount: 5,
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(30 * time.Second)}}}}},
			ready: "0/1", reason: "CrashLoopBackOff", restart: "5 (30s ago)"},
		{name: "image pull backoff", status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: waiting("ImagePullBackOff")}}},
			ready: "0/1", reason: "ImagePullBackOff", restart: "0"},
		{name: "completed", status: corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: terminated("Completed", 0)}}},
			ready: "0/1", reason: "Completed", restart: "0"},
		{name: "error", status: corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: terminated("Error", 1)}}},
			ready: "0/1", reason: "Error", restart: "0"},
		{name: "exit code without reason", status: corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: terminated("", 2)}}},
			ready: "0/1", reason: "ExitCode:2", restart: "0"},
		{name: "signal without reason", status: corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Signal: 9, ExitCode: 137}}}}},
			ready: "0/1", reason: "Signal:9", restart: "0"},
		{name: "evicted", status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}, ready: "0/1", reason: "Evicted", restart: "0"},
		{name: "one container completed, one running, pod not ready", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running(true), {Name: "b", State: terminated("Completed", 0)}}},
			ready:  "1/2", reason: "NotReady", restart: "0"},
		{name: "one container completed, one running, pod ready", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{running(true), {Name: "b", State: terminated("Completed", 0)}}},
			ready: "1/2", reason: "Running", restart: "0"},
		{name: "first init container running", spec: corev1.PodSpec{InitContainers: twoInits},
			status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "i1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, {Name: "i2", State: waiting("PodInitializing")}}},
			ready: "0/1", reason: "Init:0/2", restart: "0"},
		{name: "second init container running", spec: corev1.PodSpec{InitContainers: twoInits},
			status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "i1", State: terminated("Completed", 0)}, {Name: "i2", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
			ready: "0/1", reason: "Init:1/2", restart: "0"},
		{name: "init crash loop", spec: corev1.PodSpec{InitContainers: twoInits},
			status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "i1", State: waiting("CrashLoopBackOff"), RestartCount: 3,
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(2 * time.Minute)}}}}},
			ready: "0/1", reason: "Init:CrashLoopBackOff", restart: "3 (2m ago)"},
		{name: "init error", spec: corev1.PodSpec{InitContainers: twoInits},
			status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("Error", 1)}}},
			ready:  "0/1", reason: "Init:Error", restart: "0"},
		{name: "init exit code", spec: corev1.PodSpec{InitContainers: twoInits},
			status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "i1", State: terminated("", 3)}}},
			ready:  "0/1", reason: "Init:ExitCode:3", restart: "0"},
		{name: "sidecar counts as a container",
			spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways)}}},
			status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:            []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Started: ptrTo(true), Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
				ContainerStatuses:     []corev1.ContainerStatus{running(true)}},
			ready: "2/2", reason: "Running", restart: "0"},
		{name: "terminating", deleting: true, status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running(true)}},
			ready: "1/1", reason: "Terminating", restart: "0"},
		{name: "terminating after success shows the phase", deleting: true, status: corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", State: terminated("Completed", 0)}}},
			ready: "0/1", reason: "Completed", restart: "0"},
		{name: "lost node", deleting: true, status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"}, ready: "0/1", reason: "Unknown", restart: "0"},
		{name: "scheduling gated", status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}},
			ready: "0/1", reason: "SchedulingGated", restart: "0"},
		{name: "restarts without a termination time", status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", Ready: true, RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
			ready: "1/1", reason: "Running", restart: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: tt.spec, Status: tt.status}
			if len(pod.Spec.Containers) == 0 {
				pod.Spec.Containers = []corev1.Container{{Name: "c"}}
			}
			if tt.deleting {
				pod.DeletionTimestamp = &deleted
			}
			ready, reason, restarts := podStatusCells(pod, testNow)
			if ready != tt.ready || reason != tt.reason || restarts != tt.restart {
				t.Errorf("got READY %q STATUS %q RESTARTS %q, want %q %q %q", ready, reason, restarts, tt.ready, tt.reason, tt.restart)
			}
		})
	}
}

func TestPodRow(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", CreationTimestamp: ago(5 * time.Minute)},
		Spec: corev1.PodSpec{
			NodeName:       "node-1",
			Containers:     []corev1.Container{{Name: "c"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			PodIPs:            []corev1.PodIP{{IP: "10.244.1.2"}},
			Conditions:        []corev1.PodCondition{{Type: "example.com/lb", Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{running(true)},
		},
	}
	got := podRow(pod, testNow)
	want := []any{"web-1", "1/1", "Running", "0", "5m", "10.244.1.2", "node-1", "<none>", "1/2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if len(got) != len(podColumns) {
		t.Errorf("%d cells for %d columns", len(got), len(podColumns))
	}
}
