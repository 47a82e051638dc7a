package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
)

func TestPodValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []wantErr
	}{
		{name: "labels may change", mutate: func(p *corev1.Pod) { p.Labels["tier"] = "front" }},
		{name: "image may change", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }},
		{name: "toleration may be added", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists})
		}},
		{name: "tolerationSeconds may change", mutate: func(p *corev1.Pod) { p.Spec.Tolerations[0].TolerationSeconds = ptrTo(int64(10)) }},
		{name: "toleration may not be removed", mutate: func(p *corev1.Pod) { p.Spec.Tolerations = nil }, want: []wantErr{forbidden("spec.tolerations")}},
		{name: "active deadline may shrink", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }},
		{name: "active deadline may not grow", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(6000)) }, want: []wantErr{invalid("spec.activeDeadlineSeconds")}},
		{name: "active deadline may not be unset", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil }, want: []wantErr{invalid("spec.activeDeadlineSeconds")}},
		{name: "grace period may change", mutate: func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(1)) }},
		{name: "ports may not change", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}
		}, want: []wantErr{forbidden("spec")}},
		{name: "resources may not change", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
		}, want: []wantErr{forbidden("spec")}},
		{name: "node may not be set by update", mutate: func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, want: []wantErr{forbidden("spec")}},
		{name: "containers may not be added", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
		}, want: []wantErr{forbidden("spec.containers")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := defaultedPod(func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(5))}}
				p.Spec.ActiveDeadlineSeconds = ptrTo(int64(600))
				p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
			})
			pod := old.DeepCopy()
			tt.mutate(pod)
			checkErrs(t, Pods().ValidateUpdate(pod, old), tt.want...)
		})
	}
}

func TestPodValidateStatus(t *testing.T) {
	tests := []struct {
		name   string
		old    corev1.PodPhase
		mutate func(*corev1.PodStatus)
		want   []wantErr
	}{
		{name: "running with IPs", old: corev1.PodPending, mutate: func(s *corev1.PodStatus) {
			s.Phase, s.PodIP, s.PodIPs, s.HostIP = corev1.PodRunning, "10.244.1.5", []corev1.PodIP{{IP: "10.244.1.5"}}, "192.168.50.2"
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", Ready: true}}
		}},
		{name: "unknown phase", old: corev1.PodPending, mutate: func(s *corev1.PodStatus) { s.Phase = "Sleeping" }, want: []wantErr{notSupported("status.phase")}},
		{name: "terminal is final", old: corev1.PodSucceeded, mutate: func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning }, want: []wantErr{forbidden("status.phase")}},
		{name: "bad pod IP", old: corev1.PodPending, mutate: func(s *corev1.PodStatus) { s.PodIP = "10.0.0" }, want: []wantErr{invalid("status.podIP")}},
		{name: "status of unknown container", old: corev1.PodPending, mutate: func(s *corev1.PodStatus) {
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: "ghost"}}
		}, want: []wantErr{notFound("status.containerStatuses[0].name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := defaultedPod()
			old.Status.Phase = tt.old
			pod := old.DeepCopy()
			tt.mutate(&pod.Status)
			checkErrs(t, Pods().ValidateStatus(pod, old), tt.want...)
		})
	}
}

func TestPodPrepareForCreate(t *testing.T) {
	res := func(req, lim string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{}
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse(req + "Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse(lim + "Mi")}
		}
		return r
	}
	tests := []struct {
		name string
		res  []corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{name: "nothing", res: []corev1.ResourceRequirements{{}}, want: corev1.PodQOSBestEffort},
		{name: "limits only", res: []corev1.ResourceRequirements{res("", "1")}, want: corev1.PodQOSGuaranteed},
		{name: "equal", res: []corev1.ResourceRequirements{res("1", "1"), res("2", "2")}, want: corev1.PodQOSGuaranteed},
		{name: "requests below limits", res: []corev1.ResourceRequirements{res("1", "2")}, want: corev1.PodQOSBurstable},
		{name: "one container without limits", res: []corev1.ResourceRequirements{res("1", "1"), {}}, want: corev1.PodQOSBurstable},
		{name: "cpu only", res: []corev1.ResourceRequirements{{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}, want: corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod()
			pod.Spec.Containers = nil
			for i, r := range tt.res {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: "x", Resources: r})
			}
			r := Pods()
			r.Default(pod)
			pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}
			r.PrepareForCreate(pod)
			want := corev1.PodStatus{Phase: corev1.PodPending, QOSClass: tt.want}
			if diff := cmp.Diff(want, pod.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("scheduling gates", func(t *testing.T) {
		pod := defaultedPod(func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}} })
		Pods().PrepareForCreate(pod)
		if len(pod.Status.Conditions) != 1 || pod.Status.Conditions[0].Reason != corev1.PodReasonSchedulingGated {
			t.Errorf("conditions = %+v, want one SchedulingGated", pod.Status.Conditions)
		}
	})
}

func TestPodFields(t *testing.T) {
	pod := defaultedPod(func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Spec.ServiceAccountName = "default"
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.0.7"}}, PodIP: "10.244.0.7"}
	})
	got := Pods().SelectableFields(pod)
	want := fields.Set{
		"metadata.name": "web", "metadata.namespace": "default",
		"spec.nodeName": "node-1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "default", "spec.hostNetwork": "false",
		"status.phase": "Running", "status.podIP": "10.244.0.7", "status.nominatedNodeName": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	sel := fields.ParseSelectorOrDie("spec.nodeName=node-1,status.phase!=Succeeded")
	if !sel.Matches(got) {
		t.Errorf("selector %v does not match %v", sel, got)
	}
}
