package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procsFiles creates the cgroup rel (e.g. /wharf/node-1/daemon) in every
// v1 hierarchy and returns the cgroup.procs file of each, for a process to
// write its pid into.
func procsFiles(rel string) ([]string, error) {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, h := range hierarchies {
		dir, err := mkdirCgroup(h, rel)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.Join(dir, "cgroup.procs"))
	}
	return files, nil
}

// mkdirCgroup creates rel below the hierarchy mounted at h. A new cpuset
// cgroup starts with no CPUs and no memory nodes, and a process cannot
// join it until both are set, so each new cpuset level copies its
// parent's.
func mkdirCgroup(h, rel string) (string, error) {
	dir := h
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || len(bytes.TrimSpace(cur)) > 0 {
				continue // not a cpuset hierarchy, or already set
			}
			val, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				return "", fmt.Errorf("cgroup %s: %w", dir, err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
				return "", fmt.Errorf("cgroup %s: %s: %w", dir, f, err)
			}
		}
	}
	return dir, nil
}

// cgroupDirs returns rel's directory and all below it in every hierarchy,
// deepest first.
func cgroupDirs(rel string) ([]string, error) {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, h := range hierarchies {
		top := filepath.Join(h, rel)
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/")
	})
	return dirs, nil
}

// pidsIn returns the pids of every process in dirs.
func pidsIn(dirs []string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killCgroup kills every process in rel's subtree. Freezing first means
// nothing can fork a new process between reading the pids and killing
// them (shims and containers would otherwise race the kill); SIGKILL to a
// frozen task is delivered when it thaws.
func killCgroup(rel string) error {
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return nil
	}
	var errs []error
	// Without a freezer (or when freezing stalls on a task in the kernel)
	// the kill still goes ahead; it just might miss a fresh fork.
	freezer, err := freezerHierarchy()
	state := filepath.Join(freezer, rel, "freezer.state")
	froze := err == nil && os.WriteFile(state, []byte("FROZEN"), 0o644) == nil
	if froze {
		waitFrozen(state)
	}
	for _, pid := range pidsIn(dirs) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill pid %d: %w", pid, err))
		}
	}
	// Thaw even if FROZEN was never reached: a FREEZING cgroup keeps
	// the killed tasks from dying.
	if froze {
		if err := os.WriteFile(state, []byte("THAWED"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("thaw %s: %w", state, err))
		}
	}
	// Dying processes leave cgroup.procs only once the kernel reaps them.
	deadline := time.Now().Add(10 * time.Second)
	for len(pidsIn(dirs)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := pidsIn(dirs); len(left) > 0 {
		errs = append(errs, fmt.Errorf("cgroup %s: pids %v still alive", rel, left))
	}
	return errors.Join(errs...)
}

// waitFrozen waits (up to 1 s) until the freezer has stopped every task.
func waitFrozen(state string) {
	for i := 0; i < 500; i++ {
		data, err := os.ReadFile(state)
		if err != nil || strings.TrimSpace(string(data)) == "FROZEN" {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// removeCgroups removes rel's directories in every hierarchy, deepest
// first, and returns what it could not remove.
func removeCgroups(rel string) error {
	dirs, err := cgroupDirs(rel)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		// rmdir of a cgroup whose last task just exited can fail with
		// EBUSY for a moment.
		var err error
		for i := 0; i < 50; i++ {
			if err = os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
