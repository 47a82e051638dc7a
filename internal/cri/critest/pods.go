package critest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubelet's label keys, which the agent also uses to find its objects.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

const testNamespace = "critest"

// pod is a sandbox a subtest made; it is stopped and removed (with its
// containers) when the subtest ends.
type pod struct {
	env    *Env
	id     string
	uid    string
	name   string
	labels map[string]string // extra labels, on the sandbox and its containers
	config *runtimeapi.PodSandboxConfig
}

func randomID() string {
	buf := make([]byte, 6)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}

// newPod runs a sandbox named name with the given extra labels.
func newPod(t *testing.T, env *Env, name string, extra map[string]string) *pod {
	t.Helper()
	ctx := testContext(t)
	p := &pod{env: env, uid: randomID(), name: name, labels: extra}
	labels := map[string]string{labelPodName: name, labelPodNamespace: testNamespace, labelPodUID: p.uid}
	for k, v := range extra {
		labels[k] = v
	}
	nsOpts := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	p.config = &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: testNamespace, Uid: p.uid},
		Hostname: name,
		Labels:   labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts},
		},
	}
	if env.LogDir != "" {
		p.config.LogDirectory = filepath.Join(env.LogDir, testNamespace+"_"+name+"_"+p.uid)
		if err := os.MkdirAll(p.config.LogDirectory, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if env.CgroupParent != nil {
		p.config.Linux.CgroupParent = env.CgroupParent(p.uid)
	}
	id, err := env.Runtime.RunPodSandbox(ctx, p.config, "")
	if err != nil {
		t.Fatal(err)
	}
	p.id = id
	t.Cleanup(func() { p.remove(t) })
	return p
}

// remove removes the sandbox's containers (fakes keep them otherwise),
// then the sandbox; errors are reported, not fatal.
func (p *pod) remove(t *testing.T) {
	ctx := context.Background()
	cs, err := p.env.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: p.id})
	if err != nil {
		t.Errorf("pod %s: list containers: %v", p.name, err)
	}
	for _, c := range cs {
		if err := p.env.Runtime.RemoveContainer(ctx, c.Id); err != nil {
			t.Errorf("pod %s: %v", p.name, err)
		}
	}
	if err := p.env.Runtime.StopPodSandbox(ctx, p.id); err != nil {
		t.Logf("pod %s: %v", p.name, err) // already removed by the test
	}
	if err := p.env.Runtime.RemovePodSandbox(ctx, p.id); err != nil {
		t.Errorf("pod %s: %v", p.name, err)
	}
}

// start pulls the image (CreateContainer never pulls), then creates and
// starts a container running cmd; it returns the container id.
func (p *pod) start(t *testing.T, name string, cmd []string) string {
	t.Helper()
	ctx := testContext(t)
	if _, err := p.env.Images.PullImage(ctx, &runtimeapi.ImageSpec{Image: p.env.Image}, nil, p.config); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{
		labelPodName: p.name, labelPodNamespace: testNamespace, labelPodUID: p.uid, labelContainerName: name,
	}
	for k, v := range p.labels {
		labels[k] = v
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: p.env.Image},
		Command:  cmd,
		Labels:   labels,
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: p.config.Linux.SecurityContext.NamespaceOptions,
			},
		},
	}
	if p.config.LogDirectory != "" {
		// The runtime creates the file, not its directory (kubelet does).
		cfg.LogPath = filepath.Join(name, "0.log")
		if err := os.MkdirAll(filepath.Join(p.config.LogDirectory, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	id, err := p.env.Runtime.CreateContainer(ctx, p.id, cfg, p.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.env.Runtime.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// containerState returns a container's state, failing the test on error.
func containerState(t *testing.T, env *Env, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	st, err := env.Runtime.ContainerStatus(testContext(t), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return st.Status
}
