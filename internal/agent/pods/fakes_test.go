package pods

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// testRuntime is cri-api's fake runtime with scripted exec results, for
// probes and hooks.
type testRuntime struct {
	*critest.FakeRuntimeService
	mu    sync.Mutex
	exec  map[string]error // by command line; missing: success
	execs map[string]int
	stops []stopCall // guarded by the fake's lock
	// configs are the configs containers were created with, by name.
	configs map[string]*runtimeapi.ContainerConfig
	// sandboxConfigs are the sandbox configs passed with them.
	sandboxConfigs map[string]*runtimeapi.PodSandboxConfig
}

// CreateContainer also keeps the config, which the fake drops.
func (r *testRuntime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sb *runtimeapi.PodSandboxConfig) (string, error) {
	id, err := r.FakeRuntimeService.CreateContainer(ctx, sandboxID, cfg, sb)
	if err == nil {
		r.mu.Lock()
		r.configs[cfg.Metadata.Name] = cfg
		r.sandboxConfigs[cfg.Metadata.Name] = sb
		r.mu.Unlock()
	}
	return id, err
}

// injectedErrors counts the errors InjectError queued that no call took yet.
func (r *testRuntime) injectedErrors() int {
	r.FakeRuntimeService.Lock()
	defer r.FakeRuntimeService.Unlock()
	n := 0
	for _, errs := range r.Errors {
		n += len(errs)
	}
	return n
}

func (r *testRuntime) config(name string) *runtimeapi.ContainerConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.configs[name]
}

func (r *testRuntime) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := strings.Join(cmd, " ")
	r.execs[line]++
	return nil, nil, r.exec[line]
}

// StopContainer also records the exit code a stopped process reports
// (SIGTERM/SIGKILL), which the fake leaves at 0.
func (r *testRuntime) StopContainer(ctx context.Context, id string, timeout int64) error {
	if err := r.FakeRuntimeService.StopContainer(ctx, id, timeout); err != nil {
		return err
	}
	r.Lock()
	defer r.Unlock()
	r.stops = append(r.stops, stopCall{id, timeout})
	if c, ok := r.Containers[id]; ok {
		c.ExitCode, c.Reason = 137, "Error"
	}
	return nil
}

type stopCall struct {
	id      string
	timeout int64
}

func (r *testRuntime) stopCalls() []stopCall {
	r.Lock()
	defer r.Unlock()
	return append([]stopCall(nil), r.stops...)
}

func (r *testRuntime) setExec(line string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exec[line] = err
}

func (r *testRuntime) execCount(line string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.execs[line]
}

// events records events without blocking.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) Event(_ runtime.Object, _, reason, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, reason+": "+message)
}

func (e *events) Eventf(o runtime.Object, t, reason, format string, args ...any) {
	e.Event(o, t, reason, fmt.Sprintf(format, args...))
}

func (e *events) AnnotatedEventf(o runtime.Object, _ map[string]string, t, reason, format string, args ...any) {
	e.Eventf(o, t, reason, format, args...)
}

func (e *events) has(prefix string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
