// Package hostctl is the machine-side half of the ssh provider: what
// `wharf hostctl` does on a machine that serves a cluster host. It keeps
// the host's wharf process running (a restart loop that outlives the ssh
// session, or the body of a systemd unit), and stops, powers off and
// removes the host. Everything of a host lives in one directory (Paths)
// and one cgroup subtree, so that removing it leaves nothing behind.
package hostctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Paths are the files of one host on its machine, all below Dir
// (<base dir>/<cluster key>/<host>).
type Paths struct{ Dir string }

// Binary is the wharf executable the provider copies to the machine.
func (p Paths) Binary() string { return filepath.Join(p.Dir, "bin", "wharf") }

// Plugin is wharf-cni, copied next to the binary, where the agent finds it.
func (p Paths) Plugin() string { return filepath.Join(p.Dir, "bin", "wharf-cni") }

// State is the host's state dir, $(STATE_DIR) in its arguments.
func (p Paths) State() string { return filepath.Join(p.Dir, "state") }

// Config is the host's Config (host.json), written by the provider.
func (p Paths) Config() string { return filepath.Join(p.Dir, "host.json") }

// Log receives the output of the supervisor and of the wharf process.
func (p Paths) Log() string { return filepath.Join(p.Dir, "wharf.log") }

// SupervisorPid holds the supervisor's pid; the supervisor keeps it
// flocked while it runs, so a stale file is never mistaken for a live one.
func (p Paths) SupervisorPid() string { return filepath.Join(p.Dir, "supervise.pid") }

// ChildPid holds the pid of the wharf process the supervisor runs.
func (p Paths) ChildPid() string { return filepath.Join(p.Dir, "wharf.pid") }

// Config is what the supervisor runs: the wharf command's arguments
// (already expanded) and the host's cgroup root and limits.
type Config struct {
	Args []string `json:"args"`
	// CgroupRoot is the host's cgroup subtree (/wharf/<key>/<host>); the
	// supervisor and the wharf process run in <CgroupRoot>/wharf.
	CgroupRoot string `json:"cgroupRoot,omitempty"`
	// CPU and Memory are limits on CgroupRoot (quantities; empty: none).
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// ReadConfig reads a host's host.json.
func ReadConfig(dir string) (Config, error) {
	var c Config
	data, err := os.ReadFile(Paths{dir}.Config())
	if err != nil {
		return c, fmt.Errorf("host config: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("host config %s: %w", Paths{dir}.Config(), err)
	}
	if len(c.Args) == 0 {
		return c, fmt.Errorf("host config %s: no args", Paths{dir}.Config())
	}
	return c, nil
}

// ErrRunning: a supervisor already runs for this host.
var ErrRunning = errors.New("supervisor already running")

// lockPidFile takes the supervisor's lock and writes its pid. The lock
// goes with the process, however it dies.
func lockPidFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrRunning
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// supervisorPid returns the pid of the running supervisor, or 0. Only a
// held lock counts: the pid in an unlocked file may be anyone's by now.
func supervisorPid(p Paths) int {
	f, err := os.Open(p.SupervisorPid())
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0
	}
	return readPid(p.SupervisorPid())
}

// childPid returns the pid of the host's wharf process if it is alive and
// runs the host's binary (a recycled pid runs something else), else 0.
func childPid(p Paths) int {
	pid := readPid(p.ChildPid())
	if pid <= 0 || !runsBinary(pid, p.Binary()) {
		return 0
	}
	return pid
}

// runsBinary says whether pid executes bin (or a since-replaced bin,
// which /proc shows with a " (deleted)" suffix).
func runsBinary(pid int, bin string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == bin
}

func readPid(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Running says whether the host's wharf process is alive.
func Running(dir string) bool { return childPid(Paths{dir}) > 0 }
