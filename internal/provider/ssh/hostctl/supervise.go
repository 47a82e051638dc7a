package hostctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wharf.dev/wharf/internal/cgroups"
)

const (
	// stopGrace is how long the wharf process gets to exit on SIGTERM.
	stopGrace = 10 * time.Second
	// maxBackoff bounds the wait between restarts of a crashing process.
	maxBackoff = 30 * time.Second
	// maxLog is the size at which the log is rotated (one old copy kept).
	maxLog = 64 << 20
)

// pathEnv is the PATH the wharf process gets, whatever the ssh session
// or systemd had: the agent runs containerd, runc and iptables from it.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Supervise runs the host's wharf process (host.json in dir) and restarts
// it whenever it exits, until ctx ends; then it stops the process with
// SIGTERM (SIGKILL after a grace period). It moves itself into the host's
// cgroup first, so the process and everything it starts (containerd,
// shims, containers) stay in the host's subtree.
func Supervise(ctx context.Context, log *slog.Logger, dir string) error {
	p := Paths{dir}
	lock, err := lockPidFile(p.SupervisorPid())
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(p.SupervisorPid())
		lock.Close()
	}()
	cfg, err := ReadConfig(dir)
	if err != nil {
		return err
	}
	// The same as under systemd, whatever the shell that started us had.
	syscall.Umask(0o022)
	if cfg.CgroupRoot != "" {
		lim, err := cgroups.ParseLimits(cfg.CPU, cfg.Memory)
		if err != nil {
			return fmt.Errorf("host limits: %w", err)
		}
		if err := cgroups.Set(cfg.CgroupRoot, lim); err != nil {
			return err
		}
		if err := cgroups.Join(cfg.CgroupRoot+"/wharf", os.Getpid()); err != nil {
			return err
		}
	}
	// A process left by a supervisor that was killed cannot be waited
	// for; two agents of one host must never run at once.
	if pid := childPid(p); pid > 0 {
		log.Info("stopping the wharf process of a previous supervisor", "pid", pid)
		terminate(pid, func() bool { return childPid(p) == 0 })
	}
	backoff := time.Second
	for {
		started := time.Now()
		err := runOnce(ctx, p, cfg.Args)
		if ctx.Err() != nil {
			os.Remove(p.ChildPid())
			return nil
		}
		if time.Since(started) > maxBackoff {
			backoff = time.Second
		}
		log.Warn("wharf process exited; restarting", "err", err, "ran", time.Since(started).Round(time.Millisecond), "in", backoff)
		select {
		case <-ctx.Done():
			os.Remove(p.ChildPid())
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runOnce starts the wharf process and waits for it to exit or for ctx
// to end (then it stops the process).
func runOnce(ctx context.Context, p Paths, args []string) error {
	rotate(p.Log())
	logf, err := os.OpenFile(p.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(p.Binary(), args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), pathEnv)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Binary(), err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(p.ChildPid(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("pid file: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		terminate(pid, func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
		return ctx.Err()
	}
}

// terminate sends SIGTERM, waits up to stopGrace for gone(), then SIGKILLs.
func terminate(pid int, gone func() bool) {
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(stopGrace); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if gone() {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 250 && !gone(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// rotate keeps the log from filling the machine's disk.
func rotate(log string) {
	if fi, err := os.Stat(log); err == nil && fi.Size() > maxLog {
		os.Rename(log, log+".1")
	}
}

// Detach starts a supervisor for the host in its own session (so it
// outlives the ssh session that asked for it), logging to the host's log,
// and returns once the wharf process runs. A running supervisor is left
// alone.
func Detach(ctx context.Context, dir string) error {
	p := Paths{dir}
	if supervisorPid(p) > 0 {
		return nil
	}
	logf, err := os.OpenFile(p.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(p.Binary(), "hostctl", "supervise", "--dir", p.Dir)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), pathEnv)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	sup := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		// Running means: a wharf process whose parent is this supervisor
		// (the pid file may still name one from before).
		if pid := childPid(p); pid > 0 && parentOf(pid) == sup {
			return nil
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("supervisor: %w; log: %s", err, tail(p.Log(), 800))
		case <-deadline.C:
			return fmt.Errorf("supervisor pid %d: no wharf process after 15s; log: %s", sup, tail(p.Log(), 800))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// parentOf returns pid's parent pid, or 0.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; it ends at the last ')'.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, 0)
	}
	buf := make([]byte, n)
	k, _ := f.Read(buf)
	return strings.TrimSpace(string(buf[:k]))
}
