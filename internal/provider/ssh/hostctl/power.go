package hostctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"wharf.dev/wharf/internal/cgroups"
	"wharf.dev/wharf/internal/containerd"
	"wharf.dev/wharf/internal/nodehost"
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
	// The supervisor and its process run in the subtree; killing them
	// first matters when joining it failed.
	killSupervised(p)
	var errs []error
	// An agent's containerd has its own state dir below the host's (e.g.
	// $(STATE_DIR)/agent): its record says where.
	for _, r := range nodehost.Find(p.State()) {
		if err := nodehost.Stop(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", dir, err))
		}
	}
	if err := containerd.Shutdown(ctx, p.State(), cgroupRoot); err != nil {
		errs = append(errs, fmt.Errorf("host %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// Cleanup removes every trace of the host from the machine: each agent's
// node (package nodehost: its pods through containerd, so CNI undoes its
// per-pod rules, its network set-up in the machine's namespace, its state
// dir), then PowerOff, the host's directory (binary, state, logs) and
// cgroups, and the parent directories and cgroups no other host uses.
// When something of a node cannot go, the host's directory stays, with
// the records that find it again.
func Cleanup(ctx context.Context, dir, cgroupRoot string) error {
	p := Paths{dir}
	// The agent goes first, so that nothing starts pods again; its
	// containerd (in another cgroup) stays up to tear them down.
	killSupervised(p)
	var errs []error
	for _, r := range nodehost.Find(p.State()) {
		if err := nodehost.Remove(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", dir, err))
		}
	}
	if err := PowerOff(ctx, dir, cgroupRoot); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := containerd.Cleanup(ctx, p.State(), cgroupRoot); err != nil {
		return fmt.Errorf("host %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("host %s: %w", dir, err)
	}
	// <base dir>/<cluster key>, then <base dir>: removed only when empty.
	os.Remove(filepath.Dir(dir))
	os.Remove(filepath.Dir(filepath.Dir(dir)))
	if cgroupRoot != "" {
		cgroups.RemoveEmptyParents(cgroupRoot)
	}
	return nil
}

// killSupervised kills the supervisor, then its process (in that order,
// or the supervisor would start the process again), and waits for both.
func killSupervised(p Paths) {
	for _, pid := range []int{supervisorPid(p), childPid(p)} {
		if pid <= 0 {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 250 && syscall.Kill(pid, 0) == nil && !zombie(pid); i++ {
			time.Sleep(4 * time.Millisecond)
		}
	}
}

// zombie says whether pid has exited and awaits its parent's wait.
func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "Z"
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
