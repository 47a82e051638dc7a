package critest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"
)

// TestPodLifecycle: a sandbox with a sleeping busybox container goes
// through run, exec, status, stop and remove.
func TestPodLifecycle(t *testing.T, env *Env) {
	ctx := testContext(t)
	began := time.Now()
	p := newPod(t, env, "lifecycle", nil)
	sandboxUp := time.Since(began)
	cid := p.start(t, "main", []string{"sleep", "3600"})
	t.Logf("sandbox ready in %v, pod with one container running in %v",
		sandboxUp.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	ps, err := env.Runtime.PodSandboxStatus(ctx, p.id, false)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox state %v, want READY", ps.Status.State)
	}
	if m := ps.Status.Metadata; m.GetName() != p.name || m.GetUid() != p.uid || m.GetNamespace() != testNamespace {
		t.Errorf("sandbox metadata %v, want %s/%s uid %s", m, testNamespace, p.name, p.uid)
	}

	st := containerState(t, env, cid)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state %v, want RUNNING", st.State)
	}
	if st.Metadata.GetName() != "main" || st.Labels[labelPodUID] != p.uid {
		t.Errorf("container metadata %v labels %v", st.Metadata, st.Labels)
	}

	if env.Exec {
		out, _, err := env.Runtime.ExecSync(ctx, cid, []string{"echo", "hi"}, 10*time.Second)
		if err != nil || string(out) != "hi\n" {
			t.Errorf("exec echo hi = %q, %v", out, err)
		}
		_, stderr, err := env.Runtime.ExecSync(ctx, cid, []string{"sh", "-c", "echo oops >&2; exit 3"}, 10*time.Second)
		var exit utilexec.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 3 || string(stderr) != "oops\n" {
			t.Errorf("exec exit 3 = stderr %q, %v: want an ExitError with code 3", stderr, err)
		}
		if parent := p.config.Linux.CgroupParent; parent != "" {
			out, _, err := env.Runtime.ExecSync(ctx, cid, []string{"cat", "/proc/self/cgroup"}, 10*time.Second)
			if err != nil || !strings.Contains(string(out), ":"+parent+"/") {
				t.Errorf("container cgroups (%v):\n%s\nwant them under %s", err, out, parent)
			}
		}

		// A container that exits by itself reports its exit code.
		quick := p.start(t, "quick", []string{"sh", "-c", "exit 7"})
		eventually(t, "quick container exits", 30*time.Second, func() error {
			st := containerState(t, env, quick)
			if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
				return fmt.Errorf("state %v", st.State)
			}
			if st.ExitCode != 7 {
				t.Errorf("exit code %d, want 7", st.ExitCode)
			}
			return nil
		})
	}

	if err := env.Runtime.StopContainer(ctx, cid, 1); err != nil {
		t.Fatal(err)
	}
	if st := containerState(t, env, cid); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("after stop: container state %v, want EXITED", st.State)
	}
	if err := env.Runtime.RemoveContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Runtime.ContainerStatus(ctx, cid, false); err == nil {
		t.Errorf("status of a removed container: no error")
	}

	if err := env.Runtime.StopPodSandbox(ctx, p.id); err != nil {
		t.Fatal(err)
	}
	ps, err = env.Runtime.PodSandboxStatus(ctx, p.id, false)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after stop: sandbox state %v, want NOTREADY", ps.Status.State)
	}
}

// TestListFilters: sandboxes and containers are found by id, state and
// labels, the agent's only way of finding its pods again.
func TestListFilters(t *testing.T, env *Env) {
	ctx := testContext(t)
	group := map[string]string{"critest/group": randomID()}
	a := newPod(t, env, "list-a", group)
	b := newPod(t, env, "list-b", group)
	a1 := a.start(t, "one", []string{"sleep", "3600"})
	a2 := a.start(t, "two", []string{"sleep", "3600"})
	b1 := b.start(t, "one", []string{"sleep", "3600"})

	sandboxes := func(f *runtimeapi.PodSandboxFilter) []string {
		t.Helper()
		items, err := env.Runtime.ListPodSandbox(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range items {
			ids = append(ids, s.Id)
		}
		return ids
	}
	containers := func(f *runtimeapi.ContainerFilter) []string {
		t.Helper()
		items, err := env.Runtime.ListContainers(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range items {
			ids = append(ids, c.Id)
		}
		return ids
	}
	with := func(extra ...string) map[string]string {
		m := map[string]string{"critest/group": group["critest/group"]}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}

	same(t, "sandboxes in group", sandboxes(&runtimeapi.PodSandboxFilter{LabelSelector: with()}), a.id, b.id)
	same(t, "sandbox by uid", sandboxes(&runtimeapi.PodSandboxFilter{LabelSelector: with(labelPodUID, a.uid)}), a.id)
	same(t, "sandbox by id", sandboxes(&runtimeapi.PodSandboxFilter{Id: b.id}), b.id)
	same(t, "ready sandboxes in group", sandboxes(&runtimeapi.PodSandboxFilter{State: ready, LabelSelector: with()}), a.id, b.id)
	same(t, "containers of pod a", containers(&runtimeapi.ContainerFilter{LabelSelector: with(labelPodUID, a.uid)}), a1, a2)
	same(t, "container by pod and name", containers(&runtimeapi.ContainerFilter{LabelSelector: with(labelPodUID, a.uid, labelContainerName, "two")}), a2)
	same(t, "containers of sandbox b", containers(&runtimeapi.ContainerFilter{PodSandboxId: b.id}), b1)
	same(t, "container by id", containers(&runtimeapi.ContainerFilter{Id: a1}), a1)

	if err := env.Runtime.StopContainer(ctx, a2, 0); err != nil {
		t.Fatal(err)
	}
	same(t, "running containers in group", containers(&runtimeapi.ContainerFilter{State: running, LabelSelector: with()}), a1, b1)
	if err := env.Runtime.StopPodSandbox(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	same(t, "ready sandboxes after stopping b", sandboxes(&runtimeapi.PodSandboxFilter{State: ready, LabelSelector: with()}), a.id)
}

// same fails unless got holds exactly want, in any order.
func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		count[w]--
	}
	for _, n := range count {
		if n != 0 {
			t.Errorf("%s: got %v, want %v", what, got, want)
			return
		}
	}
}
