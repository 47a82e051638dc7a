package hostctl

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

	"k8s.io/apimachinery/pkg/api/resource"
)

// hierarchies returns the mount points of every cgroup hierarchy (v1
// controllers, named v1 hierarchies, and the v2 one), each once.
func hierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup hierarchies: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || fields[3] != "/" {
			continue
		}
		if tail[0] != "cgroup" && tail[0] != "cgroup2" {
			continue
		}
		// A bind mount of a hierarchy repeats its super options.
		if key := tail[0] + " " + tail[2]; !seen[key] {
			seen[key] = true
			dirs = append(dirs, fields[4])
		}
	}
	return dirs, sc.Err()
}

// mkdirCgroup creates rel below hierarchy h. A new v1 cpuset cgroup has
// no CPUs and no memory nodes and refuses processes until both are set,
// so each new level copies its parent's.
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
				continue
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

// joinCgroup moves this process into rel in every hierarchy; children
// started afterwards inherit it.
func joinCgroup(rel string) error {
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, h := range hs {
		dir, err := mkdirCgroup(h, rel)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// setLimits bounds the host's cgroup root: CPU (cores, e.g. "2" or
// "500m") and memory (bytes, e.g. "4Gi"); empty lifts a limit set before.
// Both cgroup v1 and v2 files are tried; a hierarchy without them is
// skipped.
func setLimits(root, cpu, memory string) error {
	const period = 100000 // µs
	quotaV1, cpuMax := "-1", "max"
	if cpu != "" {
		q, err := resource.ParseQuantity(cpu)
		if err != nil || q.Sign() <= 0 {
			return fmt.Errorf("cpu limit %q: not a positive quantity", cpu)
		}
		quota := q.MilliValue() * period / 1000
		quotaV1, cpuMax = strconv.FormatInt(quota, 10), fmt.Sprintf("%d %d", quota, period)
	}
	memV1, memMax := "-1", "max"
	if memory != "" {
		q, err := resource.ParseQuantity(memory)
		if err != nil || q.Sign() <= 0 {
			return fmt.Errorf("memory limit %q: not a positive quantity", memory)
		}
		memV1 = strconv.FormatInt(q.Value(), 10)
		memMax = memV1
	}
	hs, err := hierarchies()
	if err != nil {
		return err
	}
	writes := []struct{ file, value string }{
		{"cpu.cfs_period_us", strconv.Itoa(period)},
		{"cpu.cfs_quota_us", quotaV1},
		{"cpu.max", cpuMax},
		{"memory.limit_in_bytes", memV1},
		{"memory.max", memMax},
	}
	for _, h := range hs {
		dir, err := mkdirCgroup(h, root)
		if err != nil {
			return err
		}
		for _, w := range writes {
			path := filepath.Join(dir, w.file)
			if _, err := os.Stat(path); err != nil {
				continue
			}
			if err := os.WriteFile(path, []byte(w.value), 0o644); err != nil {
				return fmt.Errorf("limit %s=%s: %w", path, w.value, err)
			}
		}
	}
	return nil
}

// removeEmptyParents removes the parents of a host's cgroup root (e.g.
// /wharf/<key> and /wharf) in every hierarchy once no other host uses them.
func removeEmptyParents(root string) {
	hs, _ := hierarchies()
	for dir := filepath.Dir(filepath.Clean(root)); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		for _, h := range hs {
			os.Remove(filepath.Join(h, dir)) // fails, as it should, unless empty
		}
	}
}
