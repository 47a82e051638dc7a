package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"wharf.dev/wharf/internal/cgroups"
)

// joinAndExec is run by /bin/sh: it moves itself into each cgroup.procs
// file given before "--", then execs the rest. containerd thus starts in
// the host's cgroups (Go cannot run code between fork and exec, and
// CLONE_INTO_CGROUP is cgroup v2 only), and the shims it forks inherit
// them.
const joinAndExec = `while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@"`

// hideAndExec is run by /bin/sh in a new mount namespace: it unmounts the
// hierarchy given first there (made private first, so that the host keeps
// it), then execs the rest.
const hideAndExec = `mount --make-private "$1" && umount "$1" && shift && exec "$@"`

// runtimeFor is the OCI runtime containerd runs: cfg.Runtime, but runc
// where crun cannot run: on a hybrid setup whose unified hierarchy must be
// hidden (see hiddenHierarchy) when the state dir is no mount of ours.
func runtimeFor(cfg Config, p Paths) string {
	if filepath.Base(cfg.Runtime) != "crun" || !olderState(p) {
		return cfg.Runtime
	}
	if dir, err := cgroups.HybridUnified(); err != nil || dir != "" {
		if path, err := exec.LookPath("runc"); err == nil {
			return path
		}
		return "runc"
	}
	return cfg.Runtime
}

// runtimeBinary is the path containerd runs the OCI runtime at: its
// read-only copy on a state tmpfs of ours (see bindRuntime), else the
// runtime itself.
func runtimeBinary(cfg Config, p Paths) string {
	if olderState(p) {
		return runtimeFor(cfg, p)
	}
	return sealedRuntime(p, cfg.Runtime) // runtimeFor's choice on a state of ours
}

// hiddenHierarchy is the cgroup hierarchy containerd and what it starts
// must not see: crun refuses a hybrid setup whose unified hierarchy holds
// controllers ("cgroups in hybrid mode not supported", hugetlb on this
// project's VMs), and without it runs on the v1 ones alone. containerd
// then runs in a mount namespace of its own; what it mounts (sandboxes'
// netns, shm, rootfs) is under its state dir, a shared mount, so the host
// sees those mounts as before.
func hiddenHierarchy(runtime string) (string, error) {
	if filepath.Base(runtime) != "crun" {
		return "", nil
	}
	dir, err := cgroups.HybridUnified()
	if err != nil {
		return "", fmt.Errorf("containerd for crun: %w", err)
	}
	return dir, nil
}

// launch starts a new containerd and records its pid. The caller holds
// the pid file lock.
func launch(cfg Config, p Paths, pidFile *os.File) (*exec.Cmd, int64, error) {
	runtime := runtimeFor(cfg, p)
	sealed, err := mountState(p, runtime)
	if err != nil {
		return nil, 0, err
	}
	var procs []string
	if cfg.CgroupRoot != "" {
		var err error
		if procs, err = cgroups.Create(filepath.Join(cfg.CgroupRoot, "daemon")); err != nil {
			return nil, 0, fmt.Errorf("containerd cgroup: %w", err)
		}
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, 0, fmt.Errorf("containerd binary: %w", err)
	}
	args := append([]string{"-c", joinAndExec, "wharf-containerd"}, procs...)
	args = append(args, "--")
	if cfg.NetNS != "" {
		// Not `ip netns exec`: it remounts /sys, and runc then finds no
		// cgroup mounts.
		args = append(args, "nsenter", "--net="+cfg.NetNS)
	}
	hide, err := hiddenHierarchy(runtime)
	if err != nil {
		return nil, 0, err
	}
	if hide != "" {
		args = append(args, "unshare", "--mount", "--propagation", "unchanged", "/bin/sh", "-c", hideAndExec, "wharf-containerd", hide)
	}
	args = append(args, bin, "--config", p.ConfigFile)

	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("containerd log: %w", err)
	}
	defer logf.Close()
	logOffset, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = "/"
	cmd.Env = daemonEnv(os.Environ(), p.TempDir, sealed)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: containerd must outlive the agent and not get the
	// agent's terminal signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start containerd: %w", err)
	}
	if err := writePid(pidFile, cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, 0, err
	}
	return cmd, logOffset, nil
}

// daemonEnv is containerd's environment: the caller's, with TMPDIR on the
// state tmpfs. containerd mounts every new container's image in a temporary
// directory there (to read /etc/group); on disk each costs a new inode.
// XDG_RUNTIME_DIR goes: containerd prefers it to TMPDIR. With a sealed
// runtime (see bindRuntime) the shims, and so the runtime, get
// clonedBinaryEnv.
func daemonEnv(env []string, tmp string, sealed bool) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TMPDIR=") && !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "_LIBCONTAINER_CLONED_BINARY=") {
			out = append(out, kv)
		}
	}
	out = append(out, "TMPDIR="+tmp)
	if sealed {
		out = append(out, clonedBinaryEnv)
	}
	return out
}

// waitCRI polls the socket until CRI Version answers, the process exits
// (exited closes) or ctx ends.
func waitCRI(ctx context.Context, socket string, exited <-chan struct{}) (*runtimeapi.VersionResponse, error) {
	for {
		if _, err := os.Stat(socket); err == nil {
			v, err := criVersion(ctx, socket, time.Second)
			if err == nil {
				return v, nil
			}
			// The plugin is missing, not slow: a bad config.toml (e.g.
			// registry mirrors next to config_path) loads without CRI.
			if status.Code(err) == codes.Unimplemented {
				return nil, fmt.Errorf("started without the CRI plugin: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for CRI on %s: %w", socket, ctx.Err())
		case <-exited:
			return nil, errors.New("containerd exited during start-up")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// criVersion asks the CRI plugin for its version.
func criVersion(ctx context.Context, socket string, timeout time.Duration) (*runtimeapi.VersionResponse, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
}

// logTail returns what containerd logged since offset that explains a
// failed start: its warnings and errors (a plugin that failed to load),
// or else the last lines; at most 2 KiB.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return ""
	}
	var problems []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "level=warning") || strings.Contains(line, "level=error") || strings.Contains(line, "level=fatal") {
			problems = append(problems, line)
		}
	}
	out := strings.Join(problems, "\n")
	if out == "" {
		out = strings.TrimSpace(string(data))
	}
	if len(out) > 2048 {
		out = out[len(out)-2048:]
	}
	return out
}

// isContainerd says whether pid is a live containerd using configFile
// (a recycled pid would be some other program).
func isContainerd(pid int, configFile string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), "--config\x00"+configFile+"\x00")
}
