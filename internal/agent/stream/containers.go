package stream

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's labels on CRI objects (docs/agent.md): the agent finds a
// pod's sandbox and containers by these only.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// Runtime is the part of CRI's RuntimeService the server uses.
type Runtime interface {
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// notFoundError is a pod or container this node does not have (404).
type notFoundError struct{ what string }

func (e *notFoundError) Error() string { return e.what + " not found" }

// badRequestError is a request that cannot be served as asked (400).
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

// findContainer returns a pod's container by name: its latest attempt, or
// with previous the one before. A pod deleted and created again under the
// same name has a new UID; the newest pod wins.
func findContainer(ctx context.Context, rt Runtime, ns, pod, name string, previous bool) (*runtimeapi.Container, error) {
	cs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{
		labelPodNamespace: ns, labelPodName: pod, labelContainerName: name,
	}})
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s/%s: %w", ns, pod, err)
	}
	if len(cs) == 0 {
		return nil, &notFoundError{fmt.Sprintf("container %q in pod %s/%s", name, ns, pod)}
	}
	newest := slices.MaxFunc(cs, func(a, b *runtimeapi.Container) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	uid := newest.Labels[labelPodUID]
	cs = slices.DeleteFunc(cs, func(c *runtimeapi.Container) bool { return c.Labels[labelPodUID] != uid })
	slices.SortFunc(cs, func(a, b *runtimeapi.Container) int {
		return cmp.Or(cmp.Compare(attempt(b), attempt(a)), cmp.Compare(b.CreatedAt, a.CreatedAt))
	})
	if !previous {
		return cs[0], nil
	}
	if len(cs) < 2 {
		return nil, &badRequestError{fmt.Sprintf("previous terminated container %q in pod %q not found", name, pod)}
	}
	return cs[1], nil
}

func attempt(c *runtimeapi.Container) uint32 {
	if c.Metadata == nil {
		return 0
	}
	return c.Metadata.Attempt
}

// findSandbox returns the ready sandbox of a pod.
func findSandbox(ctx context.Context, rt Runtime, ns, pod string) (*runtimeapi.PodSandbox, error) {
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{labelPodNamespace: ns, labelPodName: pod},
	})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes of pod %s/%s: %w", ns, pod, err)
	}
	if len(sbs) == 0 {
		return nil, &notFoundError{fmt.Sprintf("running pod %s/%s", ns, pod)}
	}
	return slices.MaxFunc(sbs, func(a, b *runtimeapi.PodSandbox) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) }), nil
}

// running reports whether a container runs, for following its log. An
// error other than NotFound (the runtime restarting) counts as running:
// the next check decides.
func running(ctx context.Context, rt Runtime, id string) bool {
	st, err := rt.ContainerStatus(ctx, id, false)
	if err != nil {
		return ctx.Err() == nil && status.Code(err) != codes.NotFound
	}
	return st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
}
