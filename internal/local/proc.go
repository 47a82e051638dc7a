// Package local runs a whole Wharf cluster on this machine: `wharf up`
// starts the server and an agent (which starts containerd) as background
// processes with pid files and logs under a state directory, and `wharf
// down` stops them and, with --purge, removes every trace.
package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a background process known by its pid file.
type proc struct {
	name    string
	pidFile string
	logFile string
}

// pid returns the recorded pid if that process is alive and is what it
// was (its command line still names the binary), else 0.
func (p proc) pid() int {
	data, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	// A reused pid would belong to another program: check what it runs.
	// The executable's path, not the command line, which is empty for a
	// moment while a new process execs.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0
	}
	if base := filepath.Base(exe); !strings.Contains(base, "wharf") && !strings.Contains(base, p.name) {
		return 0
	}
	return pid
}

// start runs bin with args in its own session (it outlives this process),
// output appended to the log file, and records its pid.
func (p proc) start(bin string, args ...string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(p.logFile), 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p.pidFile), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", p.name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we are still here; the pid file says who it is.
	go cmd.Wait()
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return pid, err
	}
	return pid, nil
}

// stop sends SIGTERM, waits up to grace, then SIGKILL; the pid file goes.
func (p proc) stop(grace time.Duration) error {
	pid := p.pid()
	defer os.Remove(p.pidFile)
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.name, pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Proc is a background process known by its pid file, for other commands
// that run one (wharf service start|stop|status).
type Proc struct {
	// Name is the process's name in messages; the pid is trusted only if
	// its executable's name contains "wharf" or Name.
	Name    string
	PidFile string
	LogFile string
}

func (p Proc) proc() proc { return proc{name: p.Name, pidFile: p.PidFile, logFile: p.LogFile} }

// Pid returns the pid of the recorded process if it still runs, else 0.
func (p Proc) Pid() int { return p.proc().pid() }

// Start runs bin with args in its own session (it outlives this process),
// output appended to LogFile, and records its pid in PidFile.
func (p Proc) Start(bin string, args ...string) (int, error) { return p.proc().start(bin, args...) }

// Stop sends SIGTERM, waits up to grace, then SIGKILL; the pid file goes.
func (p Proc) Stop(grace time.Duration) error { return p.proc().stop(grace) }

// Tail returns the last n lines of a file (a log), or why it cannot.
func Tail(path string, n int) string { return tail(path, n) }
