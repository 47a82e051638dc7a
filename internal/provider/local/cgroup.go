package local

import (
	"bufio"
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

	"k8s.io/apimachinery/pkg/api/resource"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	dir  string
	opts map[string]bool // super options: the v1 controllers, name=…
	isV2 bool
}

// hierarchies returns every mounted cgroup hierarchy once: the v1
// controllers, named ones (name=systemd) and a hybrid setup's unified
// one. runc's cgroupfs driver makes a container's cgroup in all of them,
// so a host's subtree lives in all of them too.
func hierarchies() ([]hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []hierarchy
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 || fields[3] != "/" {
			continue
		}
		fstype, super := fields[sep+1], fields[sep+3]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		// A bind mount of a hierarchy repeats its super options.
		if key := fstype + " " + super; seen[key] {
			continue
		} else {
			seen[key] = true
		}
		h := hierarchy{dir: fields[4], opts: map[string]bool{}, isV2: fstype == "cgroup2"}
		for _, o := range strings.Split(super, ",") {
			h.opts[o] = true
		}
		out = append(out, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("cgroup hierarchies: none mounted")
	}
	return out, nil
}

// mkdirCgroup creates rel below h. A new v1 cpuset cgroup has no CPUs and
// no memory nodes and refuses processes until both are set, so every new
// cpuset level copies its parent's.
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

// cfsPeriod is the CFS period the quota is computed for (the kernel's
// default cpu.cfs_period_us).
const cfsPeriod = 100000

// limits are the values written on a host's cgroup root; -1 is no limit.
type limits struct {
	cfsQuota    int64
	memoryBytes int64
}

func parseLimits(cpu, memory string) (limits, error) {
	l := limits{cfsQuota: -1, memoryBytes: -1}
	if cpu != "" {
		q, err := resource.ParseQuantity(cpu)
		if err != nil || q.Sign() <= 0 {
			return l, fmt.Errorf("cpu %q: not a positive quantity", cpu)
		}
		// The kernel's minimum quota is 1 ms.
		l.cfsQuota = max(q.MilliValue()*cfsPeriod/1000, 1000)
	}
	if memory != "" {
		q, err := resource.ParseQuantity(memory)
		if err != nil || q.Sign() <= 0 {
			return l, fmt.Errorf("memory %q: not a positive quantity", memory)
		}
		l.memoryBytes = q.Value()
	}
	return l, nil
}

// setupCgroups creates the host's root (with its limits) and root/wharf
// in every hierarchy, and returns root/wharf's cgroup.procs files for the
// host process to join before it execs.
func setupCgroups(root string, l limits) ([]string, error) {
	hs, err := hierarchies()
	if err != nil {
		return nil, err
	}
	var procs []string
	for _, h := range hs {
		dir, err := mkdirCgroup(h.dir, root)
		if err != nil {
			return nil, err
		}
		if h.opts["cpu"] && !h.isV2 {
			quota := l.cfsQuota
			if quota > 0 {
				// The quota is per period; a parent may have changed it.
				if period, err := readCgroupInt(dir, "cpu.cfs_period_us"); err == nil && period > 0 {
					quota = max(quota*period/cfsPeriod, 1000)
				}
			}
			if err := writeCgroup(dir, "cpu.cfs_quota_us", quota); err != nil {
				return nil, err
			}
		}
		if h.opts["memory"] && !h.isV2 {
			if err := writeCgroup(dir, "memory.limit_in_bytes", l.memoryBytes); err != nil {
				return nil, err
			}
		}
		wdir, err := mkdirCgroup(h.dir, root+"/wharf")
		if err != nil {
			return nil, err
		}
		procs = append(procs, filepath.Join(wdir, "cgroup.procs"))
	}
	return procs, nil
}

func readCgroupInt(dir, file string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

func writeCgroup(dir, file string, v int64) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(v, 10)), 0o644); err != nil {
		return fmt.Errorf("cgroup %s: %s=%d: %w", dir, file, v, err)
	}
	return nil
}

// cgroupPids returns the processes in rel (not below it), read from every
// hierarchy, each once.
func cgroupPids(rel string) []int {
	hs, err := hierarchies()
	if err != nil {
		return nil
	}
	seen := map[int]bool{}
	var pids []int
	for _, h := range hs {
		data, err := os.ReadFile(filepath.Join(h.dir, rel, "cgroup.procs"))
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

// killCgroupProcs kills what is left in rel (a host process that outlived
// a crash of the service between starting it and recording its pid) and
// waits until the kernel has reaped it.
func killCgroupProcs(rel string) error {
	for i := 0; i < 500; i++ {
		pids := cgroupPids(rel)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: pids %v still alive", rel, cgroupPids(rel))
}

// removeEmptyCgroup removes rel in every hierarchy if nothing is below it
// any more (the cluster's level once its last host is gone).
func removeEmptyCgroup(rel string) {
	hs, err := hierarchies()
	if err != nil {
		return
	}
	for _, h := range hs {
		os.Remove(filepath.Join(h.dir, rel)) // ENOTEMPTY, EBUSY, ENOENT: leave it
	}
}

// subtreePids returns the processes in rel and below it, in any hierarchy.
func subtreePids(rel string) []int {
	hs, err := hierarchies()
	if err != nil {
		return nil
	}
	var pids []int
	for _, h := range hs {
		filepath.WalkDir(filepath.Join(h.dir, rel), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}
