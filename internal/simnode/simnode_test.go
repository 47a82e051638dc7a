package simnode

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// podState is what the tests compare of a pod's status.
type podState struct {
	Phase     corev1.PodPhase
	Ready     corev1.ConditionStatus
	Running   bool
	ExitCode  *int32
	HasPodIP  bool
	HasHostIP bool
}

// TestSyncPod checks the status a bound pod is given: running, or run to
// completion when ExitCodeAnnotation asks for it and nothing would restart it.
func TestSyncPod(t *testing.T) {
	code := func(c int32) *int32 { return &c }
	running := podState{Phase: corev1.PodRunning, Ready: corev1.ConditionTrue, Running: true, HasPodIP: true, HasHostIP: true}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		restart     corev1.RestartPolicy
		phase       corev1.PodPhase
		want        podState
	}{
		{name: "plain pod runs", restart: corev1.RestartPolicyAlways, want: running},
		{name: "exit 0 succeeds", annotations: map[string]string{ExitCodeAnnotation: "0"}, restart: corev1.RestartPolicyNever,
			want: podState{Phase: corev1.PodSucceeded, Ready: corev1.ConditionFalse, ExitCode: code(0), HasPodIP: true, HasHostIP: true}},
		{name: "exit 3 fails", annotations: map[string]string{ExitCodeAnnotation: "3"}, restart: corev1.RestartPolicyNever,
			want: podState{Phase: corev1.PodFailed, Ready: corev1.ConditionFalse, ExitCode: code(3), HasPodIP: true, HasHostIP: true}},
		{name: "restarted containers keep running", annotations: map[string]string{ExitCodeAnnotation: "0"}, restart: corev1.RestartPolicyAlways, want: running},
		{name: "on-failure keeps running", annotations: map[string]string{ExitCodeAnnotation: "0"}, restart: corev1.RestartPolicyOnFailure, want: running},
		{name: "not a number runs", annotations: map[string]string{ExitCodeAnnotation: "zero"}, restart: corev1.RestartPolicyNever, want: running},
		{name: "finished pod left alone", annotations: map[string]string{ExitCodeAnnotation: "0"}, restart: corev1.RestartPolicyNever, phase: corev1.PodFailed,
			want: podState{Phase: corev1.PodFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1", Annotations: tc.annotations},
				Spec: corev1.PodSpec{NodeName: "sim-0", RestartPolicy: tc.restart,
					Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				Status: corev1.PodStatus{Phase: tc.phase},
			}
			client := fake.NewClientset(pod)
			ctx := context.Background()
			if err := sync1(ctx, client, pod, 0); err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, stateOf(got)); diff != "" {
				t.Errorf("pod status (-want +got):\n%s", diff)
			}
		})
	}
}

func stateOf(p *corev1.Pod) podState {
	s := podState{Phase: p.Status.Phase, HasPodIP: p.Status.PodIP != "", HasHostIP: p.Status.HostIP != ""}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			s.Ready = c.Status
		}
	}
	for _, c := range p.Status.ContainerStatuses {
		s.Running = c.State.Running != nil
		if c.State.Terminated != nil {
			s.ExitCode = &c.State.Terminated.ExitCode
		}
	}
	return s
}

// TestSyncDeletedPod checks a deleted running pod is reported Failed with
// SIGTERM's exit code before its object is deleted, as an agent does.
func TestSyncDeletedPod(t *testing.T) {
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1", DeletionTimestamp: &now, Finalizers: []string{"example.com/keep"}},
		Spec:       corev1.PodSpec{NodeName: "sim-0", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	client := fake.NewClientset(pod)
	ctx := context.Background()
	if err := sync1(ctx, client, pod, 0); err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, a := range client.Actions() {
		if u, ok := a.(clienttesting.UpdateAction); ok && a.GetSubresource() == "status" {
			phases = append(phases, string(u.GetObject().(*corev1.Pod).Status.Phase))
		}
		if a.GetVerb() == "delete" {
			phases = append(phases, "delete")
		}
	}
	if diff := cmp.Diff([]string{"Failed", "delete"}, phases); diff != "" {
		t.Errorf("status writes and deletes (-want +got):\n%s", diff)
	}
}
