// Package cgroups makes, fills, limits, kills and removes one cgroup
// subtree (a host's, a node's containerd) in every mounted hierarchy at
// once. runc's cgroupfs driver puts a container in all of them, so a
// subtree is only gone when it is gone from each. Paths named rel are
// relative to a hierarchy's root, e.g. /wharf/<cluster>/<host>.
package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wharf.dev/wharf/internal/mountinfo"
)

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	Dir  string
	Opts map[string]bool // super options: the v1 controllers, name=…
	V2   bool
}

// Hierarchies returns every mounted cgroup hierarchy once: the v1
// controllers, named ones (name=systemd) and a hybrid setup's unified one.
func Hierarchies() ([]Hierarchy, error) {
	mounts, err := mountinfo.Read()
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	seen := map[string]bool{}
	var out []Hierarchy
	for _, m := range mounts {
		if (m.FSType != "cgroup" && m.FSType != "cgroup2") || m.Root != "/" {
			continue
		}
		// The super options identify the hierarchy; a bind mount of the
		// same hierarchy repeats them.
		key := m.FSType + " " + m.SuperOpts
		if seen[key] {
			continue
		}
		seen[key] = true
		h := Hierarchy{Dir: m.MountPoint, Opts: map[string]bool{}, V2: m.FSType == "cgroup2"}
		for _, o := range strings.Split(m.SuperOpts, ",") {
			h.Opts[o] = true
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("cgroup hierarchies: none mounted")
	}
	return out, nil
}

// HybridUnified returns the mount point of a hybrid setup's unified
// hierarchy (cgroup2 next to v1 controllers) if it holds controllers of
// its own (e.g. hugetlb), and "" otherwise. crun refuses to run there.
func HybridUnified() (string, error) {
	hs, err := Hierarchies()
	if err != nil {
		return "", err
	}
	v1 := false
	for _, h := range hs {
		v1 = v1 || !h.V2
	}
	for _, h := range hs {
		if !h.V2 || !v1 {
			continue
		}
		controllers, err := os.ReadFile(filepath.Join(h.Dir, "cgroup.controllers"))
		if err != nil {
			return "", fmt.Errorf("unified hierarchy: %w", err)
		}
		if len(bytes.TrimSpace(controllers)) > 0 {
			return h.Dir, nil
		}
	}
	return "", nil
}

// Freezer returns the mount point of the v1 freezer controller.
func Freezer() (string, error) {
	hs, err := Hierarchies()
	if err != nil {
		return "", err
	}
	return freezer(hs)
}

func freezer(hs []Hierarchy) (string, error) {
	for _, h := range hs {
		if h.Opts["freezer"] && !h.V2 {
			return h.Dir, nil
		}
	}
	return "", errors.New("no cgroup v1 freezer hierarchy mounted")
}

// Mkdir creates rel below the hierarchy mounted at h and returns its
// directory. A new v1 cpuset cgroup has no CPUs and no memory nodes and
// refuses processes until both are set, so each new cpuset level copies
// its parent's.
func Mkdir(h, rel string) (string, error) {
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

// Create makes rel in every hierarchy and returns the cgroup.procs file
// of each, for a process to write its pid into.
func Create(rel string) ([]string, error) {
	hs, err := Hierarchies()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, h := range hs {
		dir, err := Mkdir(h.Dir, rel)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.Join(dir, "cgroup.procs"))
	}
	return files, nil
}

// Join moves process pid into rel in every hierarchy; its children
// started afterwards inherit it.
func Join(rel string, pid int) error {
	files, err := Create(rel)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}

// Subtree returns rel's directory and all below it in every hierarchy,
// deepest first.
func Subtree(rel string) ([]string, error) {
	hs, err := Hierarchies()
	if err != nil {
		return nil, err
	}
	return subtree(hs, rel)
}

func subtree(hs []Hierarchy, rel string) ([]string, error) {
	var dirs []string
	for _, h := range hs {
		err := filepath.WalkDir(filepath.Join(h.Dir, rel), func(path string, d fs.DirEntry, err error) error {
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
	mountinfo.SortDeepestFirst(dirs)
	return dirs, nil
}

// SubtreePids returns the processes in rel and below it, in any
// hierarchy, each once.
func SubtreePids(rel string) []int {
	dirs, err := Subtree(rel)
	if err != nil {
		return nil
	}
	return pidsIn(dirs)
}

// pidsIn returns the pids of every process in dirs, each once.
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

// Kill kills every process in rel's subtree and waits (up to 10 s) until
// the kernel has reaped them. Freezing first means nothing can fork a new
// process between reading the pids and killing them (shims and
// containers would otherwise race the kill); SIGKILL to a frozen task is
// delivered when it thaws.
func Kill(rel string) error {
	hs, err := Hierarchies()
	if err != nil {
		return err
	}
	dirs, err := subtree(hs, rel)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return nil
	}
	var errs []error
	// Without a freezer (or when freezing stalls on a task in the kernel)
	// the kill still goes ahead; it just might miss a fresh fork.
	fz, err := freezer(hs)
	state := filepath.Join(fz, rel, "freezer.state")
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
	for range 500 {
		data, err := os.ReadFile(state)
		if err != nil || strings.TrimSpace(string(data)) == "FROZEN" {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Remove removes rel's directories in every hierarchy, deepest first, and
// returns what it could not remove.
func Remove(rel string) error {
	dirs, err := Subtree(rel)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		// rmdir of a cgroup whose last task just exited can fail with
		// EBUSY for a moment.
		var err error
		for range 50 {
			if err = os.Remove(d); err == nil || !errors.Is(err, syscall.EBUSY) {
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

// RemoveEmpty removes rel in every hierarchy where nothing is below it
// any more.
func RemoveEmpty(rel string) {
	hs, _ := Hierarchies()
	for _, h := range hs {
		os.Remove(filepath.Join(h.Dir, rel)) // ENOTEMPTY, EBUSY, ENOENT: leave it
	}
}

// RemoveEmptyParents removes the levels above rel (e.g. /wharf/<cluster>
// and /wharf) in every hierarchy, each only once nothing else is below it.
func RemoveEmptyParents(rel string) {
	for dir := filepath.Dir(filepath.Clean(rel)); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		RemoveEmpty(dir)
	}
}
