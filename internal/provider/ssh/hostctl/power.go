package hostctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"wharf.dev/wharf/internal/containerd"
)

// Stop stops the host's supervisor and wharf process gracefully
// (SIGTERM; the supervisor passes it on and waits for the process). What
// the process leaves running (an agent leaves containerd and the pods)
// keeps running: PowerOff stops that too.
func Stop(ctx context.Context, dir string) error {
	p := Paths{dir}
	if pid := supervisorPid(p); pid > 0 {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop supervisor %d: %w", pid, err)
		}
		// The supervisor waits stopGrace for its process, then kills it.
		deadline := time.Now().Add(stopGrace + 5*time.Second)
		for supervisorPid(p) > 0 && time.Now().Before(deadline) {
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
		if pid := supervisorPid(p); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// A wharf process without a supervisor (its supervisor was killed).
	if pid := childPid(p); pid > 0 {
		terminate(pid, func() bool { return childPid(p) == 0 })
	}
	return nil
}

// PowerOff stops the host at once, as a power cut would: every process in
// its cgroup subtree is killed together (frozen first, so none can fork a
// new one meanwhile), its mounts, shim sockets and cached CNI results go;
// its files stay, and the next start of the host finds them.
func PowerOff(ctx context.Context, dir, cgroupRoot string) error {
	p := Paths{dir}
	// The supervisor and its process run in the subtree; these kills only
	// matter when joining it failed, and keep a supervisor from
	// restarting anything meanwhile.
	if pid := supervisorPid(p); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if pid := childPid(p); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	var errs []error
	// An agent's containerd has its own state dir below the host's (e.g.
	// $(STATE_DIR)/agent/containerd): shim sockets and CNI results are
	// found from there.
	for _, d := range containerdDirs(p.State()) {
		if err := containerd.Shutdown(ctx, d, cgroupRoot); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", dir, err))
		}
	}
	if err := containerd.Shutdown(ctx, p.State(), cgroupRoot); err != nil {
		errs = append(errs, fmt.Errorf("host %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// Cleanup removes every trace of the host from the machine: PowerOff,
// then the host's directory (binary, state, logs) and cgroups, and the
// parent directories and cgroups no other host uses.
func Cleanup(ctx context.Context, dir, cgroupRoot string) error {
	if err := PowerOff(ctx, dir, cgroupRoot); err != nil {
		return err
	}
	if err := containerd.Cleanup(ctx, Paths{dir}.State(), cgroupRoot); err != nil {
		return fmt.Errorf("host %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("host %s: %w", dir, err)
	}
	// <base dir>/<cluster key>, then <base dir>: removed only when empty.
	os.Remove(filepath.Dir(dir))
	os.Remove(filepath.Dir(filepath.Dir(dir)))
	if cgroupRoot != "" {
		removeEmptyParents(cgroupRoot)
	}
	return nil
}

// containerdDirs returns the state dirs below state (at most two levels
// down) that hold a containerd's files.
func containerdDirs(state string) []string {
	var dirs []string
	for _, pattern := range []string{"containerd", "*/containerd", "*/*/containerd"} {
		matches, _ := filepath.Glob(filepath.Join(state, pattern, "config.toml"))
		for _, m := range matches {
			dirs = append(dirs, filepath.Dir(filepath.Dir(m)))
		}
	}
	return dirs
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
