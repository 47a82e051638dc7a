package local

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"wharf.dev/wharf/internal/bgproc"
	"wharf.dev/wharf/internal/cgroups"
)

// waitAndExec is run by /bin/sh: it waits until the provider has moved
// it into the host's cgroups and says so on fd 3, then execs its
// arguments. The host process thus starts in its host's cgroups before it
// runs a single instruction of its own (Go cannot run code between fork
// and exec, and CLONE_INTO_CGROUP is cgroup v2 only); containerd, its
// shims and the pods inherit the subtree. Without the word (the provider
// died) it exits instead of running outside them.
const waitAndExec = `read -r go <&3 && [ "$go" = go ] || exit 1; exec 3<&-; exec "$@"`

// defaultPath is the PATH of host processes when the service has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// expandArgs replaces $(HOST_IP) and $(STATE_DIR) in args.
func expandArgs(args []string, hostIP, stateDir string) []string {
	r := strings.NewReplacer("$(HOST_IP)", hostIP, "$(STATE_DIR)", stateDir)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// maxSocketPath is the longest unix socket path (sun_path, without NUL).
const maxSocketPath = 107

// containerdSocket is the longest socket path below an agent's state dir.
const containerdSocket = "/containerd/containerd.sock.ttrpc"

// checkSocketPaths refuses an agent whose --state-dir would make its
// containerd's socket path too long: the agent would fail in its log
// only, long after CreateHost said yes. Host state dirs have a fixed
// length (S/<12 hex digits>), so only a long S can hit this.
func checkSocketPaths(args []string) error {
	if len(args) == 0 || args[0] != "agent" {
		return nil
	}
	for i, a := range args {
		dir, ok := strings.CutPrefix(a, "--state-dir=")
		if !ok && a == "--state-dir" && i+1 < len(args) {
			dir, ok = args[i+1], true
		}
		if ok && len(dir)+len(containerdSocket) > maxSocketPath {
			return fmt.Errorf("the agent's state dir %q makes containerd's socket path %d bytes long, more than %d: use a shorter state dir or cluster name",
				dir, len(dir)+len(containerdSocket), maxSocketPath)
		}
	}
	return nil
}

// startProcess starts the host's wharf process: in its own session (it
// must outlive the service, as a VM outlives magnum-conductor), in the
// host's network namespace through nsenter (not `ip netns exec`, which
// remounts /sys: runc then finds no cgroups), joining procs first, with
// its output appended to the host's log. It returns the pid and start
// time that identify the process later.
func (p *Provider) startProcess(n names, procs, args []string) (int, uint64, error) {
	logf, err := os.OpenFile(filepath.Join(n.dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("host log: %w", err)
	}
	defer logf.Close()
	release, hold, err := os.Pipe()
	if err != nil {
		return 0, 0, fmt.Errorf("start host process: %w", err)
	}
	defer release.Close()
	defer hold.Close()
	bgproc.CloseOnExecInherited()
	shArgs := append([]string{"-c", waitAndExec, "wharf-host", p.nsenter, "--net=" + n.netnsPath(), p.cfg.Binary}, args...)
	cmd := exec.Command("/bin/sh", shArgs...)
	cmd.Dir = n.dir
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	// A host is a machine of its own: it gets none of the service's
	// environment but a PATH (for containerd, iptables, nsenter).
	cmd.Env = []string{"PATH=" + path, "HOME=" + n.dir}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{release} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start host process: %w", err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) (int, uint64, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, fmt.Errorf("host process %d: %w", pid, err)
	}
	// Moving a process between v1 cgroups costs ~1 ms per hierarchy (an
	// RCU grace period): done once, here, while the shell waits.
	for _, f := range procs {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fail(fmt.Errorf("%s: %w", f, err))
		}
	}
	st, err := procStartTime(pid)
	if err != nil {
		return fail(err)
	}
	if _, err := hold.Write([]byte("go\n")); err != nil {
		return fail(err)
	}
	// Reap it when it dies, as long as this service runs (after a
	// restart of the service the process is init's child), and keep how
	// it ended for fault.
	go func() {
		cmd.Wait()
		p.exits.Store(pid, cmd.ProcessState.String())
	}()
	return pid, st, nil
}

// fault says why a host's process, started and not powered off, is not
// running: killed by the OOM killer (its cgroups say so), how it ended
// if this provider started it, and the last lines of its log.
func (p *Provider) fault(r *record) string {
	n := p.namesFor(r.Cluster, r.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "its wharf process (pid %d) is not running", r.PID)
	if how, ok := p.exits.Load(r.PID); ok {
		fmt.Fprintf(&b, " (%s)", how)
	}
	if kills := cgroups.OOMKills(n.cgroupRoot); kills > 0 {
		limit := r.Spec.Memory
		if limit == "" {
			limit = "none"
		}
		fmt.Fprintf(&b, "; the OOM killer killed %d of the host's processes (memory limit %s)", kills, limit)
	}
	if tail := strings.TrimSpace(bgproc.Tail(filepath.Join(n.dir, logFile), 3)); tail != "" {
		fmt.Fprintf(&b, "; its log ends: %s", strings.ReplaceAll(tail, "\n", " | "))
	}
	return b.String()
}

// procStat returns a process's state letter and start time (field 22 of
// /proc/<pid>/stat, clock ticks after boot).
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its closing parenthesis.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	st, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], st, nil
}

func procStartTime(pid int) (uint64, error) {
	_, st, err := procStat(pid)
	return st, err
}

// alive says whether the recorded process still runs: same pid, same
// start time (pids are reused), and not a zombie.
func (r *record) alive() bool {
	if r.PID <= 0 {
		return false
	}
	state, st, err := procStat(r.PID)
	return err == nil && st == r.StartTime && state != 'Z' && state != 'X'
}
