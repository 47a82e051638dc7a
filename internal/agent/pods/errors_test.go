package pods

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/testwait"
)

const badImage = "registry.wharf.local/wharf/nope:v1"

func TestBadImage(t *testing.T) {
	h := newHarness(t)
	h.start()
	pullErr := status.Error(codes.NotFound, `failed to pull and unpack image "registry.wharf.local/wharf/nope:v1": not found`)
	for range 2 {
		h.images.InjectError("PullImage", pullErr)
	}
	bad := testPod("bad", func(p *v1.Pod) {
		p.Spec.Containers[0].Image = badImage
		p.Spec.Containers[0].ImagePullPolicy = v1.PullAlways
	})
	h.createPod(bad)
	p := h.waitPod("bad", "ErrImagePull", func(p *v1.Pod) bool { return waitingReason(p, "app") == reasonErrImagePull })
	if msg := containerStatus(p, "app").State.Waiting.Message; !strings.HasPrefix(msg, "failed to pull and unpack image") {
		t.Errorf("ErrImagePull message %q, want the runtime's", msg)
	}
	if p.Status.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}

	// Other pods are unaffected.
	good := testPod("good")
	h.images.SetFakeImages([]string{testImage})
	h.createPod(good)
	h.waitPod("good", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })

	pulls := func() int {
		n := 0
		for _, c := range h.images.Called {
			if c == "PullImage" {
				n++
			}
		}
		return n
	}
	h.images.Lock()
	before := pulls()
	h.images.Unlock()
	h.clock.Step(pendingResync)
	p = h.waitPod("bad", "ImagePullBackOff", func(p *v1.Pod) bool { return waitingReason(p, "app") == reasonImagePullBackOff })
	if msg := containerStatus(p, "app").State.Waiting.Message; !strings.Contains(msg, `Back-off pulling image "`+badImage+`"`) {
		t.Errorf("ImagePullBackOff message %q", msg)
	}
	h.images.Lock()
	during := pulls()
	h.images.Unlock()
	if during != before {
		t.Errorf("pulled %d times during the back-off", during-before)
	}
	// At the end of the 10s back-off it pulls again (and fails), then
	// waits 20s. ErrImagePull shows only until the next sync.
	h.clock.Step(imageBackOffInitial - pendingResync)
	h.waitFor("second pull", func() bool {
		h.images.Lock()
		defer h.images.Unlock()
		return pulls() == before+1
	})
	h.waitFor("pull back-off doubled", func() bool {
		return h.m.pulls.delay(backOffKey(bad.UID, "image:"+badImage)) == 2*imageBackOffInitial
	})
	// Once the image can be pulled, the pod runs.
	h.clock.Step(2 * imageBackOffInitial)
	h.waitRunning(bad.UID, "app", 0)
	h.waitPod("bad", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
}

func TestImagePullPolicy(t *testing.T) {
	tests := []struct {
		policy  v1.PullPolicy
		present bool
		pulls   int
		reason  string
	}{
		{v1.PullIfNotPresent, true, 0, ""},
		{v1.PullIfNotPresent, false, 1, ""},
		{v1.PullAlways, true, 1, ""},
		{v1.PullNever, true, 0, ""},
		{v1.PullNever, false, 0, reasonErrImageNeverPull},
	}
	for _, tt := range tests {
		name := string(tt.policy)
		if tt.present {
			name += "/present"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			if tt.present {
				h.images.SetFakeImages([]string{testImage})
			}
			h.start()
			pod := testPod("p", func(p *v1.Pod) { p.Spec.Containers[0].ImagePullPolicy = tt.policy })
			h.createPod(pod)
			if tt.reason != "" {
				h.waitPod("p", tt.reason, func(p *v1.Pod) bool { return waitingReason(p, "app") == tt.reason })
				return
			}
			h.waitRunning(pod.UID, "app", 0)
			h.images.Lock()
			defer h.images.Unlock()
			n := 0
			for _, c := range h.images.Called {
				if c == "PullImage" {
					n++
				}
			}
			if n != tt.pulls {
				t.Errorf("pulled %d times, want %d", n, tt.pulls)
			}
		})
	}
}

// TestStartErrors: a container the runtime cannot create or start shows
// the runtime's message and is retried with back-off.
func TestStartErrors(t *testing.T) {
	tests := []struct {
		method, reason, message string
		// nextAttempt is the attempt that finally runs.
		nextAttempt uint32
	}{
		{"CreateContainer", reasonCreateContainer, "failed to create containerd container: no such file", 0},
		{"StartContainer", reasonRunContainer, `failed to create containerd task: exec: "nosuchcmd": executable file not found in $PATH: unknown`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			h.rt.InjectError(tt.method, status.Error(codes.Unknown, tt.message))
			pod := testPod("cmd", func(p *v1.Pod) { p.Spec.Containers[0].Command = []string{"nosuchcmd"} })
			h.createPod(pod)
			p := h.waitPod("cmd", tt.reason, func(p *v1.Pod) bool { return waitingReason(p, "app") == tt.reason })
			if got := containerStatus(p, "app").State.Waiting.Message; got != tt.message {
				t.Errorf("message %q, want %q", got, tt.message)
			}
			if p.Status.Phase != v1.PodPending {
				t.Errorf("phase %s, want Pending", p.Status.Phase)
			}
			h.clock.Step(time.Second)
			h.waitRunning(pod.UID, "app", tt.nextAttempt)
			h.waitPod("cmd", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
		})
	}
}

// TestRuntimeUnavailable: while the runtime fails (containerd
// restarting) nothing running is touched, and the agent recovers.
func TestRuntimeUnavailable(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("steady")
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	h.waitPod("steady", "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })

	down := status.Error(codes.Unavailable, "connection refused")
	for range 20 {
		h.rt.InjectError("ListPodSandbox", down)
		h.rt.InjectError("ListContainers", down)
	}
	syncs := h.m.syncs.Load()
	// Step the clock, a period per poll, until the workers used up every
	// injected error: the outage is over.
	testwait.For(t, "the end of the runtime outage", func() (bool, string) {
		n := h.rt.injectedErrors()
		if n > 0 {
			h.clock.Step(time.Second)
		}
		return n == 0, fmt.Sprintf("%d injected errors left", n)
	})
	h.waitFor("syncs after the outage", func() bool { return h.m.syncs.Load() > syncs })
	for _, call := range []string{"RunPodSandbox", "StopPodSandbox", "CreateContainer", "StopContainer", "RemoveContainer", "RemovePodSandbox"} {
		if n := h.calls(call); n > map[string]int{"RunPodSandbox": 1, "CreateContainer": 1}[call] {
			t.Errorf("%s called %d times around a runtime outage", call, n)
		}
	}
	if st := h.containerState(pod.UID, "app", 0); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state %v after the outage", st)
	}
	if p := h.getPod("steady"); p.Status.Phase != v1.PodRunning {
		t.Errorf("phase %s after the outage", p.Status.Phase)
	}
}
