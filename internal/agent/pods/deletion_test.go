package pods

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// podCgroups makes the cgroup directories containerd would create for a
// pod and one of its containers, in every fake controller.
func (h *harness) podCgroups(uid types.UID) []string {
	var dirs []string
	for _, c := range []string{"cpu,cpuacct", "memory", "pids"} {
		d := filepath.Join(h.cgroups, c, "wharf", testNode, "pod"+string(uid), "ctr1")
		if err := os.MkdirAll(d, 0o755); err != nil {
			h.t.Fatal(err)
		}
		dirs = append(dirs, filepath.Dir(d))
	}
	return dirs
}

// markDeleted does what the API server does on a graceful delete.
func (h *harness) markDeleted(name string, grace int64) {
	h.t.Helper()
	p := h.getPod(name)
	now := metav1.NewTime(h.clock.Now().Add(time.Duration(grace) * time.Second))
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func TestGracefulDeletion(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("doomed", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
		p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"drain"}}}}
	})
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	h.waitPod("doomed", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	cgroups := h.podCgroups(pod.UID)
	podDir := filepath.Join(h.dir, "state", "pods", string(pod.UID))
	logDir := filepath.Join(h.dir, "state", "logs", "default_doomed_uid-doomed")
	for _, p := range []string{filepath.Join(podDir, "volumes", "scratch"), logDir} {
		if !exists(p) {
			t.Fatalf("%s missing while the pod runs", p)
		}
	}

	// At the final delete, everything but the logs must be gone.
	var atDelete []string
	h.client.PrependReactor("delete", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		h.rt.Lock()
		if len(h.rt.Sandboxes)+len(h.rt.Containers) > 0 {
			atDelete = append(atDelete, "runtime objects remain")
		}
		h.rt.Unlock()
		for _, p := range append([]string{podDir}, cgroups...) {
			if exists(p) {
				atDelete = append(atDelete, p+" remains")
			}
		}
		if !exists(logDir) {
			atDelete = append(atDelete, "logs removed before the pod object")
		}
		if h.rt.execCount("drain") != 1 {
			atDelete = append(atDelete, "preStop hook did not run")
		}
		if o, err := h.client.Tracker().Get(v1.SchemeGroupVersion.WithResource("pods"), "default", "doomed"); err != nil {
			atDelete = append(atDelete, err.Error())
		} else if ph := o.(*v1.Pod).Status.Phase; !terminal(ph) {
			atDelete = append(atDelete, "phase "+string(ph)+", want a terminal phase")
		}
		return false, nil, nil
	})

	h.markDeleted("doomed", 20)
	h.waitFor("pod object deleted", func() bool { return h.getPod("doomed") == nil })
	if len(atDelete) > 0 {
		t.Errorf("at the final delete: %v", atDelete)
	}
	stops := h.rt.stopCalls()
	if len(stops) != 1 || stops[0].timeout != 20 {
		t.Errorf("StopContainer calls %+v, want one with the 20s grace period", stops)
	}
	var del clienttesting.DeleteActionImpl
	for _, a := range h.client.Actions() {
		if d, ok := a.(clienttesting.DeleteActionImpl); ok && d.Resource.Resource == "pods" {
			del = d
		}
	}
	opts := del.DeleteOptions
	if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 || opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != pod.UID {
		t.Errorf("delete options %+v, want grace 0 and UID precondition %s", opts, pod.UID)
	}
	h.waitFor("log directory removed", func() bool { return !exists(logDir) })
	h.waitFor("worker gone", func() bool {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		return len(h.m.workers) == 0
	})
}

// seedPod puts a pod's sandbox and running container in the fake runtime,
// as a previous agent would have left them.
func (h *harness) seedPod(pod *v1.Pod, grace string, attempts ...uint32) {
	sandboxID := "sb-" + string(pod.UID)
	labels := map[string]string{labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID)}
	h.rt.SetFakeSandboxes(append(h.sandboxes(), &critest.FakePodSandbox{PodSandboxStatus: runtimeapi.PodSandboxStatus{
		Id:       sandboxID,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
		State:    runtimeapi.PodSandboxState_SANDBOX_READY,
		Network:  &runtimeapi.PodSandboxNetworkStatus{Ip: "10.244.1.7"},
		Labels:   labels,
	}}))
	var ctrs []*critest.FakeContainer
	for _, c := range pod.Spec.Containers {
		for i, attempt := range attempts {
			state := runtimeapi.ContainerState_CONTAINER_EXITED
			if i == len(attempts)-1 {
				state = runtimeapi.ContainerState_CONTAINER_RUNNING
			}
			cl := copyMap(labels)
			cl[labelContainerName] = c.Name
			ctrs = append(ctrs, &critest.FakeContainer{
				SandboxID: sandboxID,
				ContainerStatus: runtimeapi.ContainerStatus{
					Id:          critest.BuildContainerName(&runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt}, sandboxID),
					Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
					State:       state,
					CreatedAt:   int64(attempt) + 1,
					StartedAt:   time.Date(2024, 12, 31, 0, 0, int(attempt), 0, time.UTC).UnixNano(),
					FinishedAt:  map[bool]int64{true: time.Date(2024, 12, 31, 0, 1, 0, 0, time.UTC).UnixNano()}[state == runtimeapi.ContainerState_CONTAINER_EXITED],
					ExitCode:    map[bool]int32{true: 2}[state == runtimeapi.ContainerState_CONTAINER_EXITED],
					Image:       &runtimeapi.ImageSpec{Image: c.Image},
					ImageRef:    c.Image,
					Labels:      cl,
					Annotations: map[string]string{annotationGracePeriod: grace, annotationHash: specHash(&c)},
				},
			})
		}
	}
	h.rt.SetFakeContainers(append(h.containers(), ctrs...))
}

func (h *harness) sandboxes() []*critest.FakePodSandbox {
	h.rt.Lock()
	defer h.rt.Unlock()
	var out []*critest.FakePodSandbox
	for _, s := range h.rt.Sandboxes {
		out = append(out, s)
	}
	return out
}

func (h *harness) containers() []*critest.FakeContainer {
	h.rt.Lock()
	defer h.rt.Unlock()
	var out []*critest.FakeContainer
	for _, c := range h.rt.Containers {
		out = append(out, c)
	}
	return out
}

func TestOrphanCleanup(t *testing.T) {
	// Deleted while the agent was down: gracefully (the object waits
	// with a deletionTimestamp) or by force (the object is gone).
	deleting := testPod("deleting")
	now := metav1.Now()
	grace := int64(15)
	deleting.DeletionTimestamp, deleting.DeletionGracePeriodSeconds = &now, &grace
	ghost := testPod("ghost")
	h := newHarness(t, deleting)
	h.seedPod(deleting, "30", 0)
	h.seedPod(ghost, "5", 0)
	ghostDirs := append(h.podCgroups(ghost.UID),
		filepath.Join(h.dir, "state", "pods", string(ghost.UID), "volumes", "data"),
		filepath.Join(h.dir, "state", "logs", "default_ghost_uid-ghost", "app"))
	for _, d := range ghostDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A directory left behind by a pod the runtime no longer has.
	stale := filepath.Join(h.dir, "state", "pods", "uid-stale", "volumes", "x")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}

	h.start()
	h.waitFor("runtime emptied", func() bool { return len(h.sandboxes())+len(h.containers()) == 0 })
	h.waitFor("deleting pod's object removed", func() bool {
		_, err := h.client.CoreV1().Pods("default").Get(context.Background(), "deleting", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	for _, d := range ghostDirs {
		d := d
		h.waitFor(d+" removed", func() bool { return !exists(d) })
	}
	got := map[int64]bool{}
	for _, s := range h.rt.stopCalls() {
		got[s.timeout] = true
	}
	if !got[5] || !got[15] {
		t.Errorf("stop timeouts %v, want 5 (the orphan's annotation) and 15 (the deletion's grace)", h.rt.stopCalls())
	}
	h.clock.Step(defaultResyncPeriod)
	h.waitFor("stale pod directory swept", func() bool { return !exists(filepath.Dir(filepath.Dir(stale))) })
}

// TestAdoption: a new agent over a runtime that already runs the pod
// restarts nothing and reports the restart count from the attempts.
func TestAdoption(t *testing.T) {
	pod := testPod("adopted", func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "sidecar", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent})
	})
	h := newHarness(t, pod)
	h.images.SetFakeImages([]string{testImage})
	h.seedPod(pod, "30", 2, 3)
	h.start()
	p := h.waitPod("adopted", "Running", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning && condition(p, v1.PodReady) == v1.ConditionTrue
	})
	for _, name := range []string{"app", "sidecar"} {
		s := containerStatus(p, name)
		if s.RestartCount != 3 || s.State.Running == nil || s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 2 {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if p.Status.PodIP != "10.244.1.7" {
		t.Errorf("podIP %q", p.Status.PodIP)
	}
	// A few relists and a full resync later, still nothing was touched.
	syncs := h.m.syncs.Load()
	for range 11 {
		h.clock.Step(time.Second)
	}
	h.waitFor("resync", func() bool { return h.m.syncs.Load() > syncs })
	for _, call := range []string{"RunPodSandbox", "StopPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "RemovePodSandbox"} {
		if n := h.calls(call); n != 0 {
			t.Errorf("%s called %d times on adoption", call, n)
		}
	}

	// And again with a second agent after the first one stops.
	h.stop()
	h.start()
	h.clock.Step(defaultResyncPeriod)
	h.waitFor("second agent synced", func() bool { return h.m.syncs.Load() > 0 })
	if n := h.calls("CreateContainer") + h.calls("StopContainer"); n != 0 {
		t.Errorf("second agent touched containers (%d calls)", n)
	}
}

func TestTerminatedPhase(t *testing.T) {
	exited := func(code int32) v1.ContainerStatus {
		return v1.ContainerStatus{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
	}
	waiting := v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	for _, tc := range []struct {
		name     string
		statuses []v1.ContainerStatus
		want     v1.PodPhase
	}{
		{"all exited 0", []v1.ContainerStatus{exited(0), exited(0)}, v1.PodSucceeded},
		{"one killed", []v1.ContainerStatus{exited(0), exited(137)}, v1.PodFailed},
		{"never started", []v1.ContainerStatus{waiting}, v1.PodFailed},
		{"no statuses", nil, v1.PodFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := terminatedPhase(tc.statuses); got != tc.want {
				t.Errorf("terminatedPhase = %s, want %s", got, tc.want)
			}
		})
	}
}
