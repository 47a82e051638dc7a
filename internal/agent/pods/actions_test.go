package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// summary is a podActions reduced to names, for comparison.
type summary struct {
	CreateSandbox bool
	Attempt       uint32
	Kill          []string
	Start         []string // name@attempt
}

func summarize(a podActions) summary {
	s := summary{CreateSandbox: a.createSandbox, Attempt: a.sandboxAttempt}
	for _, k := range a.kill {
		s.Kill = append(s.Kill, k.c.id)
	}
	for _, st := range a.start {
		s.Start = append(s.Start, st.spec.Name+"@"+string(rune('0'+st.attempt)))
	}
	return s
}

func TestComputeActions(t *testing.T) {
	dead := func(rt *podRuntime) *podRuntime {
		rt.sandboxes[0].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		rt.sandboxes[0].Metadata.Attempt = 1
		return rt
	}
	withInit := func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "i1"}, {Name: "i2"}} }
	tests := []struct {
		name      string
		pod       func(*v1.Pod)
		rt        *podRuntime
		unhealthy string // container ID failing liveness
		want      summary
	}{
		{name: "new pod", rt: &podRuntime{}, want: summary{CreateSandbox: true, Start: []string{"app@0"}}},
		{name: "new pod with init containers: the first one only", pod: withInit, rt: &podRuntime{}, want: summary{CreateSandbox: true, Start: []string{"i1@0"}}},
		{name: "running and healthy", rt: readySandbox(ctr("app", 0, running, 0))},
		{name: "exited, Always", rt: readySandbox(ctr("app", 4, exited, 0)), want: summary{Start: []string{"app@5"}}},
		{name: "exited 0, OnFailure", pod: func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyOnFailure }, rt: readySandbox(ctr("app", 0, exited, 0))},
		{name: "exited 1, OnFailure", pod: func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyOnFailure }, rt: readySandbox(ctr("app", 0, exited, 1)), want: summary{Start: []string{"app@1"}}},
		{name: "exited, Never", pod: func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever }, rt: readySandbox(ctr("app", 0, exited, 1))},
		{name: "created but never started", rt: readySandbox(ctr("app", 1, created, 0)), want: summary{Start: []string{"app@2"}}},
		{name: "liveness failed", rt: readySandbox(ctr("app", 0, running, 0)), unhealthy: "app-0", want: summary{Kill: []string{"app-0"}, Start: []string{"app@1"}}},
		{
			name: "liveness failed, Never: killed, not restarted",
			pod:  func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever },
			rt:   readySandbox(ctr("app", 0, running, 0)), unhealthy: "app-0",
			want: summary{Kill: []string{"app-0"}},
		},
		{
			name: "image changed",
			pod:  func(p *v1.Pod) { p.Spec.Containers[0].Image = "other:v2" },
			rt: func() *podRuntime {
				c := ctr("app", 0, running, 0)
				c.annotations = map[string]string{annotationHash: specHash(&v1.Container{Image: testImage})}
				return readySandbox(c)
			}(),
			want: summary{Kill: []string{"app-0"}, Start: []string{"app@1"}},
		},
		{name: "first init running", pod: withInit, rt: readySandbox(ctr("i1", 0, running, 0))},
		{name: "first init done", pod: withInit, rt: readySandbox(ctr("i1", 0, exited, 0)), want: summary{Start: []string{"i2@0"}}},
		{name: "init failed, Always", pod: withInit, rt: readySandbox(ctr("i1", 0, exited, 1)), want: summary{Start: []string{"i1@1"}}},
		{name: "init failed, Never", pod: func(p *v1.Pod) { withInit(p); p.Spec.RestartPolicy = v1.RestartPolicyNever }, rt: readySandbox(ctr("i1", 0, exited, 1))},
		{name: "initialized", pod: withInit, rt: readySandbox(ctr("i1", 0, exited, 0), ctr("i2", 0, exited, 0)), want: summary{Start: []string{"app@0"}}},
		{name: "init containers gone but the app ran", pod: withInit, rt: readySandbox(ctr("app", 0, running, 0))},
		{
			name: "sandbox died: kill, new sandbox, start over",
			rt:   dead(readySandbox(ctr("app", 2, running, 0))),
			want: summary{CreateSandbox: true, Attempt: 2, Kill: []string{"app-2"}, Start: []string{"app@3"}},
		},
		{
			name: "sandbox died, Never: stays down",
			pod:  func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever },
			rt:   dead(readySandbox(ctr("app", 0, exited, 0))),
			want: summary{Attempt: 2},
		},
		{
			name: "sandbox without an IP is replaced",
			rt: func() *podRuntime {
				rt := readySandbox()
				rt.sandboxStatus.Network.Ip = ""
				return rt
			}(),
			want: summary{CreateSandbox: true, Attempt: 1, Start: []string{"app@0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("a")
			if tt.pod != nil {
				tt.pod(pod)
			}
			got := computeActions(pod, tt.rt, func(_, id string) (string, bool) { return "unhealthy", id == tt.unhealthy })
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeepCounting(t *testing.T) {
	pod := testPod("k", func(p *v1.Pod) { p.Spec.InitContainers = []v1.Container{{Name: "init"}} })
	old := v1.PodStatus{
		InitContainerStatuses: []v1.ContainerStatus{{Name: "init", RestartCount: 1, ContainerID: "containerd://a"}},
		ContainerStatuses:     []v1.ContainerStatus{{Name: "app", RestartCount: 4, ContainerID: "containerd://b"}},
	}
	starts := []startAction{{spec: &pod.Spec.InitContainers[0], init: true}, {spec: &pod.Spec.Containers[0]}}
	// The runtime lost both: numbering continues after what was reported.
	keepCounting(starts, &podRuntime{}, old)
	if starts[0].attempt != 2 || starts[1].attempt != 5 {
		t.Errorf("attempts %d, %d; want 2, 5", starts[0].attempt, starts[1].attempt)
	}
	// A container the runtime still has keeps its own numbering.
	starts = []startAction{{spec: &pod.Spec.Containers[0], attempt: 7}}
	keepCounting(starts, readySandbox(ctr("app", 6, exited, 1)), old)
	if starts[0].attempt != 7 {
		t.Errorf("attempt %d, want 7", starts[0].attempt)
	}
}
