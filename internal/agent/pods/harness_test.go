package pods

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	testclock "k8s.io/utils/clock/testing"

	"wharf.dev/wharf/internal/testwait"
)

const (
	testNode  = "node1"
	testImage = "registry.wharf.local/wharf/testapp:v1"
	hostIP    = "10.0.0.11"
)

// harness runs a Manager against fakes: cri-api's runtime and image
// service, client-go's clientset and a fake clock.
type harness struct {
	t       *testing.T
	m       *Manager
	rt      *testRuntime
	images  *critest.FakeImageService
	client  *fake.Clientset
	clock   *testclock.FakeClock
	events  *events
	dir     string
	cgroups string
	cancel  context.CancelFunc
	done    chan error
	// configure, if set, changes the Manager's Config before start.
	configure func(*Config)
}

func testNodeObject() *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode},
		Status: v1.NodeStatus{
			Addresses:   []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: hostIP}},
			Capacity:    v1.ResourceList{v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourceCPU: resource.MustParse("4")},
			Allocatable: v1.ResourceList{v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourceCPU: resource.MustParse("4")},
		},
	}
}

// newHarness builds the fakes; start runs the Manager.
func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t:      t,
		rt:     &testRuntime{FakeRuntimeService: critest.NewFakeRuntimeService(), exec: map[string]error{}, execs: map[string]int{}, configs: map[string]*runtimeapi.ContainerConfig{}, sandboxConfigs: map[string]*runtimeapi.PodSandboxConfig{}},
		images: critest.NewFakeImageService(),
		client: fake.NewClientset(append([]runtime.Object{testNodeObject()}, objs...)...),
		clock:  testclock.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)),
		events: &events{},
		dir:    dir,
	}
	h.cgroups = filepath.Join(dir, "cgroup")
	for _, c := range []string{"cpu,cpuacct", "memory", "pids"} {
		if err := os.MkdirAll(filepath.Join(h.cgroups, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// start runs a new Manager over the harness's fakes and waits until its
// loops tick.
func (h *harness) start() {
	h.t.Helper()
	cfg := Config{
		NodeName:      testNode,
		StateDir:      filepath.Join(h.dir, "state"),
		ClusterDNS:    []string{"10.96.0.10"},
		ClusterDomain: "cluster.local",
		Runtime:       h.rt,
		Images:        h.images,
		Client:        h.client,
		Logger:        slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:         h.clock,
		ResolvConf:    filepath.Join(h.dir, "resolv.conf"),
	}
	if h.configure != nil {
		h.configure(&cfg)
	}
	h.m = New(cfg)
	h.m.cgroupFS = h.cgroups
	h.m.recorder = h.events
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.m.Run(ctx) }()
	h.t.Cleanup(h.stop)
	select {
	case <-h.m.ready:
	case <-time.After(10 * time.Second):
		h.t.Fatal("manager did not start")
	}
}

// stop stops the Manager and waits for it; the pods stay.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return")
	}
}

// waitFor waits until cond holds; time in the fakes only moves when the
// test steps the clock.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	testwait.For(h.t, what, func() (bool, string) { return cond(), "not yet" })
}

func (h *harness) createPod(pod *v1.Pod) {
	h.t.Helper()
	if _, err := h.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) getPod(name string) *v1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// waitPod waits until the pod's object satisfies cond.
func (h *harness) waitPod(name, what string, cond func(*v1.Pod) bool) *v1.Pod {
	h.t.Helper()
	var p *v1.Pod
	h.waitFor(name+": "+what, func() bool {
		p = h.getPod(name)
		return p != nil && cond(p)
	})
	return p
}

// container finds a fake container by pod UID, name and attempt.
func (h *harness) container(uid types.UID, name string, attempt uint32) *critest.FakeContainer {
	h.rt.Lock()
	defer h.rt.Unlock()
	for _, c := range h.rt.Containers {
		if c.Labels[labelPodUID] == string(uid) && c.Metadata.Name == name && c.Metadata.Attempt == attempt {
			return c
		}
	}
	return nil
}

// containerState reads a fake container's state; -1 when absent.
func (h *harness) containerState(uid types.UID, name string, attempt uint32) runtimeapi.ContainerState {
	c := h.container(uid, name, attempt)
	if c == nil {
		return -1
	}
	h.rt.Lock()
	defer h.rt.Unlock()
	return c.State
}

func (h *harness) waitRunning(uid types.UID, name string, attempt uint32) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%s attempt %d running", name, attempt), func() bool {
		return h.containerState(uid, name, attempt) == runtimeapi.ContainerState_CONTAINER_RUNNING
	})
}

// exit makes a fake container exit with code after running for ran.
func (h *harness) exit(uid types.UID, name string, attempt uint32, code int32, ran time.Duration) {
	h.t.Helper()
	c := h.container(uid, name, attempt)
	if c == nil {
		h.t.Fatalf("no container %s attempt %d", name, attempt)
	}
	h.rt.Lock()
	defer h.rt.Unlock()
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = c.StartedAt + int64(ran)
}

func (h *harness) calls(method string) int {
	n := 0
	for _, c := range h.rt.GetCalls() {
		if c == method {
			n++
		}
	}
	return n
}

// testPod is a pod bound to the test node with one container.
func testPod(name string, mutate ...func(*v1.Pod)) *v1.Pod {
	grace := int64(30)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{
			NodeName:                      testNode,
			RestartPolicy:                 v1.RestartPolicyAlways,
			DNSPolicy:                     v1.DNSClusterFirst,
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{
				Name: "app", Image: testImage, ImagePullPolicy: v1.PullIfNotPresent,
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: v1.TerminationMessageReadFile,
			}},
		},
		Status: v1.PodStatus{
			Phase:      v1.PodPending,
			Conditions: []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue}},
		},
	}
	for _, f := range mutate {
		f(p)
	}
	return p
}

func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func condition(p *v1.Pod, t v1.PodConditionType) v1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func waitingReason(p *v1.Pod, name string) string {
	if s := containerStatus(p, name); s != nil && s.State.Waiting != nil {
		return s.State.Waiting.Reason
	}
	return ""
}
