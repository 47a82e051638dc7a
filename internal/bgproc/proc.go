// Package bgproc runs a wharf process in the background, known by its pid
// file and writing to its log: what `wharf up` does for the server and the
// agent, and `wharf service start` for the service.
package bgproc

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

// Proc is a background process known by its pid file.
type Proc struct {
	// Name is the process's name in messages; the pid is trusted only if
	// its executable's name contains "wharf" or Name.
	Name    string
	PidFile string
	LogFile string
}

// Pid returns the recorded pid if that process is alive and is what it
// was (its command line still names the binary), else 0.
func (p Proc) Pid() int {
	data, err := os.ReadFile(p.PidFile)
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
	if base := filepath.Base(exe); !strings.Contains(base, "wharf") && !strings.Contains(base, p.Name) {
		return 0
	}
	return pid
}

// Start runs bin with args in its own session (it outlives this process),
// output appended to the log file, and records its pid.
func (p Proc) Start(bin string, args ...string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p.PidFile), 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	CloseOnExecInherited()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", p.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we are still here; the pid file says who it is.
	go cmd.Wait()
	if err := os.WriteFile(p.PidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return pid, err
	}
	return pid, nil
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL; the pid file goes.
func (p Proc) Stop(grace time.Duration) error {
	pid := p.Pid()
	defer os.Remove(p.PidFile)
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, pid, err)
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

// Tail returns the last n lines of a file (a log), or why it cannot.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CloseOnExecInherited marks every file this process inherited (beyond
// stdin, stdout and stderr) close-on-exec, so that a process it starts to
// outlive it does not hold its caller's files: a lock the caller took
// (`flock LOCK make demo` would otherwise stay locked as long as the
// service runs), a pipe a caller waits to see closed. Go opens its own
// files close-on-exec already.
func CloseOnExecInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
