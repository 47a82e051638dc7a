package cri_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/cri"
	"wharf.dev/wharf/internal/cri/critest"
	"wharf.dev/wharf/internal/testwait"
)

// runSleeper runs a pod with one sleeping container and returns the
// sandbox id, the container id and the container's pid.
func runSleeper(t *testing.T, h *critest.Host, name string) (string, string, int) {
	t.Helper()
	ctx := context.Background()
	uid := name + "-uid"
	sb := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: uid},
		Labels:   map[string]string{"io.kubernetes.pod.uid": uid},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: h.CgroupRoot + "/pod" + uid},
	}
	sid, err := h.Client.RunPodSandbox(ctx, sb, "")
	if err != nil {
		t.Fatal(err)
	}
	image := &runtimeapi.ImageSpec{Image: h.Registry.Busybox}
	if _, err := h.Client.PullImage(ctx, image, nil, sb); err != nil {
		t.Fatal(err)
	}
	cid, err := h.Client.CreateContainer(ctx, sid, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    image,
		Command:  []string{"sleep", "3600"},
	}, sb)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Client.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	st, err := h.Client.ContainerStatus(ctx, cid, true)
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Pid int }
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container pid from verbose status: %v %q", err, st.Info["info"])
	}
	return sid, cid, info.Pid
}

// TestContainerdRestartKeepsPods: containerd killed under a running pod is
// restarted, the client fails fast meanwhile and then works again, and the
// pod never stops.
func TestContainerdRestartKeepsPods(t *testing.T) {
	critest.SkipUnlessRoot(t)
	h := critest.NewHost(t, critest.ServeImages(t), "")
	_, cid, pid := runSleeper(t, h, "survivor")

	old := h.Daemon.Pid()
	began := time.Now()
	syscall.Kill(old, syscall.SIGKILL)
	failures := 0
	testwait.For(t, "CRI from a new containerd", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := h.Client.ContainerStatus(ctx, cid, false)
		cancel()
		if err != nil {
			if !errors.Is(err, cri.ErrUnavailable) {
				t.Fatalf("during the restart: %v, want ErrUnavailable", err)
			}
			failures++
		}
		return err == nil && h.Daemon.Pid() != old, fmt.Sprintf("pid %d (killed %d): %v", h.Daemon.Pid(), old, err)
	})
	t.Logf("CRI back %v after SIGKILL (%d calls failed fast meanwhile)", time.Since(began).Round(time.Millisecond), failures)

	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("container process %d gone after the restart: %v", pid, err)
	}
	out, _, err := h.Client.ExecSync(context.Background(), cid, []string{"echo", "still here"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(out)) != "still here" {
		t.Errorf("exec after the restart: %q, %v", out, err)
	}
}

// TestCleanupRemovesEverything: removing a host with a pod running leaves
// no process, mount, shim socket, CNI result, cgroup or file behind.
func TestCleanupRemovesEverything(t *testing.T) {
	critest.SkipUnlessRoot(t)
	h := critest.NewHost(t, critest.ServeImages(t), "")
	sid, _, pid := runSleeper(t, h, "doomed")
	daemonPid := h.Daemon.Pid()

	shimSockets := readAddresses(t, filepath.Join(h.StateDir, "containerd", "state", "io.containerd.runtime.v2.task", "*", "*", "address"))
	cniResults, _ := filepath.Glob(filepath.Join(containerd.CNIResultsDir, "*-"+sid+"-*"))
	if len(shimSockets) == 0 || len(cniResults) == 0 || len(mountsUnder(t, h.StateDir)) == 0 {
		t.Fatalf("nothing to clean? shim sockets %v, CNI results %v, mounts %v", shimSockets, cniResults, mountsUnder(t, h.StateDir))
	}

	h.StopWatching()
	began := time.Now()
	if err := containerd.Cleanup(context.Background(), h.StateDir, h.CgroupRoot); err != nil {
		t.Fatal(err)
	}
	t.Logf("host removed in %v", time.Since(began).Round(time.Millisecond))

	for _, p := range []int{pid, daemonPid} {
		if alive(p) {
			t.Errorf("pid %d alive", p)
		}
	}
	if m := mountsUnder(t, h.StateDir); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	for _, f := range append(append(shimSockets, cniResults...), h.StateDir) {
		if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (%v)", f, err)
		}
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + h.CgroupRoot); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}

// alive says whether pid runs; a zombie (this test process started
// containerd, and reaps it in its own time) does not.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

func readAddresses(t *testing.T, pattern string) []string {
	files, _ := filepath.Glob(pattern)
	var socks []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://"))
	}
	return socks
}

func mountsUnder(t *testing.T, dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// TestRegistryTokenRotation: a new token in hosts.toml is used by the next
// pull, without restarting containerd.
func TestRegistryTokenRotation(t *testing.T) {
	critest.SkipUnlessRoot(t)
	reg := critest.ServeImages(t)
	h := critest.NewHost(t, reg, "")
	ctx := context.Background()
	image := &runtimeapi.ImageSpec{Image: reg.Busybox}
	if _, err := h.Client.PullImage(ctx, image, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Client.RemoveImage(ctx, image); err != nil {
		t.Fatal(err)
	}

	token := reg.RotateToken()
	if _, err := h.Client.PullImage(ctx, image, nil, nil); err == nil {
		t.Fatal("pull with the old token: no error")
	} else {
		t.Logf("old token: %.200v", err)
	}
	cfg := h.Config
	ep := cfg.Registries[critest.Alias][0]
	ep.BearerToken = token
	cfg.Registries = map[string][]containerd.Endpoint{critest.Alias: {ep}}
	if err := containerd.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	pid := h.Daemon.Pid()
	if _, err := h.Client.PullImage(ctx, image, nil, nil); err != nil {
		t.Fatalf("pull with the new token in hosts.toml: %v", err)
	}
	if h.Daemon.Pid() != pid {
		t.Errorf("containerd restarted (%d, now %d)", pid, h.Daemon.Pid())
	}
}
