package pods

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestPodStartsAndReportsRunning(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("web")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	p := h.waitPod("web", "Running and Ready", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning && condition(p, v1.PodReady) == v1.ConditionTrue
	})
	s := containerStatus(p, "app")
	want := v1.ContainerStatus{
		Name:        "app",
		State:       v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: s.State.Running.StartedAt}},
		Ready:       true,
		Image:       testImage,
		ImageID:     testImage,
		ContainerID: "fakeRuntime://web_default_uid-web_0_app_0",
		Started:     s.Started,
	}
	if diff := cmp.Diff(want, *s); diff != "" || !*s.Started {
		t.Errorf("container status (-want +got):\n%s", diff)
	}
	if p.Status.PodIP != "192.168.192.168" || p.Status.HostIP != hostIP || p.Status.StartTime == nil || p.Status.QOSClass != v1.PodQOSBestEffort {
		t.Errorf("status %+v", p.Status)
	}
	for _, c := range []v1.PodConditionType{v1.PodScheduled, v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady} {
		if condition(p, c) != v1.ConditionTrue {
			t.Errorf("condition %s = %q", c, condition(p, c))
		}
	}
	// The sandbox carries the kubelet's labels.
	sb := h.sandboxes()
	if len(sb) != 1 || sb[0].Labels[labelPodUID] != "uid-web" || sb[0].Labels[labelPodName] != "web" || sb[0].Labels["app"] != "web" {
		t.Errorf("sandboxes %+v", sb)
	}
	// Status is written when it changes only.
	patches := func() int {
		n := 0
		for _, a := range h.client.Actions() {
			if a.GetVerb() == "patch" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	before, syncs := patches(), h.m.syncs.Load()
	h.clock.Step(defaultResyncPeriod)
	h.waitFor("resync", func() bool { return h.m.syncs.Load() > syncs })
	if n := patches(); n != before {
		t.Errorf("%d status writes without a change", n-before)
	}
}

func TestInitContainers(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("init", func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "first", Image: testImage}, {Name: "second", Image: testImage}}
	})
	h.createPod(pod)
	h.waitRunning(pod.UID, "first", 0)
	p := h.waitPod("init", "initializing", func(p *v1.Pod) bool {
		return containerStatus(p, "first") != nil && containerStatus(p, "first").State.Running != nil
	})
	if h.container(pod.UID, "second", 0) != nil || h.container(pod.UID, "app", 0) != nil {
		t.Fatal("started more than the first init container")
	}
	if p.Status.Phase != v1.PodPending || condition(p, v1.PodInitialized) != v1.ConditionFalse ||
		waitingReason(p, "second") != reasonPodInitializing || waitingReason(p, "app") != reasonPodInitializing {
		t.Errorf("status while initializing: %+v", p.Status)
	}

	h.exit(pod.UID, "first", 0, 0, time.Second)
	h.clock.Step(time.Second)
	h.waitRunning(pod.UID, "second", 0)
	if h.container(pod.UID, "app", 0) != nil {
		t.Fatal("app started before the second init container finished")
	}
	h.exit(pod.UID, "second", 0, 0, time.Second)
	h.clock.Step(time.Second)
	h.waitRunning(pod.UID, "app", 0)
	p = h.waitPod("init", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	for _, name := range []string{"first", "second"} {
		s := containerStatus(p, name)
		if s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || !s.Ready {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if condition(p, v1.PodInitialized) != v1.ConditionTrue {
		t.Error("not Initialized")
	}
}

func TestInitContainerFailure(t *testing.T) {
	tests := []struct {
		policy    v1.RestartPolicy
		restarted bool
		phase     v1.PodPhase
	}{
		{v1.RestartPolicyNever, false, v1.PodFailed},
		{v1.RestartPolicyOnFailure, true, v1.PodPending},
		{v1.RestartPolicyAlways, true, v1.PodPending},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			h := newHarness(t)
			h.start()
			pod := testPod("initfail", func(p *v1.Pod) {
				p.Spec.RestartPolicy = tt.policy
				p.Spec.InitContainers = []v1.Container{{Name: "setup", Image: testImage}}
			})
			h.createPod(pod)
			h.waitRunning(pod.UID, "setup", 0)
			h.exit(pod.UID, "setup", 0, 3, time.Second)
			h.clock.Step(time.Second)
			if tt.restarted {
				h.waitRunning(pod.UID, "setup", 1)
			}
			p := h.waitPod("initfail", string(tt.phase), func(p *v1.Pod) bool { return p.Status.Phase == tt.phase })
			if !tt.restarted {
				h.waitFor("sandbox stopped", func() bool { return h.calls("StopPodSandbox") == 1 })
				if s := containerStatus(p, "setup"); s.State.Terminated == nil || s.State.Terminated.ExitCode != 3 {
					t.Errorf("setup: %+v", s.State)
				}
			}
			if h.container(pod.UID, "app", 0) != nil {
				t.Error("app started although initialization failed")
			}
		})
	}
}

func TestPodCompletion(t *testing.T) {
	tests := []struct {
		policy    v1.RestartPolicy
		exitCode  int32
		restarted bool
		phase     v1.PodPhase
	}{
		{v1.RestartPolicyNever, 0, false, v1.PodSucceeded},
		{v1.RestartPolicyNever, 1, false, v1.PodFailed},
		{v1.RestartPolicyOnFailure, 0, false, v1.PodSucceeded},
		{v1.RestartPolicyOnFailure, 1, true, v1.PodRunning},
		{v1.RestartPolicyAlways, 0, true, v1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(rune('0'+tt.exitCode)), func(t *testing.T) {
			h := newHarness(t)
			h.start()
			pod := testPod("job", func(p *v1.Pod) { p.Spec.RestartPolicy = tt.policy })
			h.createPod(pod)
			h.waitRunning(pod.UID, "app", 0)
			// What the container wrote to its termination message file.
			msgFile := filepath.Join(h.dir, "state", "pods", string(pod.UID), "containers", "app", "0")
			if err := os.WriteFile(msgFile, []byte("all done"), 0o644); err != nil {
				t.Fatal(err)
			}
			h.exit(pod.UID, "app", 0, tt.exitCode, time.Second)
			h.clock.Step(time.Second)
			if tt.restarted {
				h.waitRunning(pod.UID, "app", 1)
			}
			p := h.waitPod("job", string(tt.phase), func(p *v1.Pod) bool { return p.Status.Phase == tt.phase })
			if tt.restarted {
				return
			}
			s := containerStatus(p, "app")
			if s.State.Terminated == nil || s.State.Terminated.ExitCode != tt.exitCode || s.State.Terminated.Message != "all done" {
				t.Errorf("state %+v", s.State)
			}
			if condition(p, v1.PodReady) != v1.ConditionFalse {
				t.Error("a finished pod is Ready")
			}
			h.waitFor("sandbox stopped", func() bool { return h.calls("StopPodSandbox") == 1 })
			for range 3 {
				h.clock.Step(defaultResyncPeriod)
			}
			if h.container(pod.UID, "app", 1) != nil || h.container(pod.UID, "app", 0) == nil {
				t.Error("a finished pod's container was restarted or removed")
			}
			if got := h.getPod("job").Status.Phase; got != tt.phase {
				t.Errorf("phase changed to %s", got)
			}
		})
	}
}

func TestConfigMapsSecretsAndEnv(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"greeting": "hello"}}
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "default"}, Data: map[string][]byte{"token": []byte("s3cret")}}
	h := newHarness(t, cm, secret)
	h.start()
	pod := testPod("cfg", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "config", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}}
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []v1.VolumeMount{{Name: "config", MountPath: "/etc/config", ReadOnly: true}}
		c.Env = []v1.EnvVar{
			{Name: "GREETING", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "greeting"}}},
			{Name: "TOKEN", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "EXTRA", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "later"}, Key: "x"}}},
		}
		c.Args = []string{"$(GREETING) from $(POD_IP)"}
	})
	h.createPod(pod)
	p := h.waitPod("cfg", "CreateContainerConfigError", func(p *v1.Pod) bool { return waitingReason(p, "app") == reasonCreateConfig })
	if msg := containerStatus(p, "app").State.Waiting.Message; msg != `configmap "later" not found` {
		t.Errorf("message %q", msg)
	}
	// The ConfigMap's watch wakes the pod as soon as it appears.
	later := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "default"}, Data: map[string]string{"x": "y"}}
	if _, err := h.client.CoreV1().ConfigMaps("default").Create(context.Background(), later, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(pod.UID, "app", 0)
	cfg := h.rt.config("app")
	env := map[string]string{}
	for _, kv := range cfg.Envs {
		env[kv.Key] = string(kv.Value)
	}
	wantEnv := map[string]string{"GREETING": "hello", "TOKEN": "s3cret", "POD_IP": "192.168.192.168", "EXTRA": "y"}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hello from 192.168.192.168"}, cfg.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	volDir := filepath.Join(h.dir, "state", "pods", string(pod.UID), "volumes", "config")
	var mount *runtimeapi.Mount
	for _, m := range cfg.Mounts {
		if m.ContainerPath == "/etc/config" {
			mount = m
		}
	}
	if mount == nil || mount.HostPath != volDir || !mount.Readonly {
		t.Errorf("mounts %v", cfg.Mounts)
	}
	read := func() string {
		b, _ := os.ReadFile(filepath.Join(volDir, "greeting"))
		return string(b)
	}
	if got := read(); got != "hello" {
		t.Errorf("greeting file %q", got)
	}
	cm.Data["greeting"] = "bonjour"
	if _, err := h.client.CoreV1().ConfigMaps("default").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("volume updated", func() bool { return read() == "bonjour" })
	if h.calls("StopContainer") != 0 {
		t.Error("a ConfigMap change restarted the container")
	}
}

func TestActiveDeadline(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("deadline", func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) })
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	h.waitPod("deadline", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	h.clock.Step(59 * time.Second)
	if st := h.containerState(pod.UID, "app", 0); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("killed before the deadline: %v", st)
	}
	h.clock.Step(time.Second)
	p := h.waitPod("deadline", "Failed", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if p.Status.Reason != "DeadlineExceeded" {
		t.Errorf("reason %q", p.Status.Reason)
	}
	if st := h.containerState(pod.UID, "app", 0); st != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container %v after the deadline", st)
	}
	for range 3 {
		h.clock.Step(defaultResyncPeriod)
	}
	if h.container(pod.UID, "app", 1) != nil {
		t.Error("restarted after the deadline")
	}
}
