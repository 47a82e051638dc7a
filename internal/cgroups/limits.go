package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// cfsPeriod is the CFS period a quota is computed for (the kernel's
// default cpu.cfs_period_us, µs).
const cfsPeriod = 100000

// Limits bound a subtree; -1 is no limit.
type Limits struct {
	CFSQuota    int64 // µs of CPU time per cfsPeriod
	MemoryBytes int64
}

// ParseLimits reads CPU (cores, e.g. "2" or "500m") and memory (bytes,
// e.g. "4Gi"); empty is no limit.
func ParseLimits(cpu, memory string) (Limits, error) {
	l := Limits{CFSQuota: -1, MemoryBytes: -1}
	if cpu != "" {
		q, err := resource.ParseQuantity(cpu)
		if err != nil || q.Sign() <= 0 {
			return l, fmt.Errorf("cpu %q: not a positive quantity", cpu)
		}
		// The kernel's minimum quota is 1 ms.
		l.CFSQuota = max(q.MilliValue()*cfsPeriod/1000, 1000)
	}
	if memory != "" {
		q, err := resource.ParseQuantity(memory)
		if err != nil || q.Sign() <= 0 {
			return l, fmt.Errorf("memory %q: not a positive quantity", memory)
		}
		l.MemoryBytes = q.Value()
	}
	return l, nil
}

// Set creates rel in every hierarchy and writes l on it, in the v1 files
// (cpu.cfs_quota_us, memory.limit_in_bytes) and the v2 ones (cpu.max,
// memory.max) where the hierarchy has them; -1 lifts a limit set before.
func Set(rel string, l Limits) error {
	hs, err := Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir, err := Mkdir(h.Dir, rel)
		if err != nil {
			return err
		}
		quota := l.CFSQuota
		if period, err := readInt(dir, "cpu.cfs_period_us"); err == nil && period > 0 && quota > 0 {
			// The quota is per period; a parent may have changed it.
			quota = max(quota*period/cfsPeriod, 1000)
		}
		cpuMax, memMax := "max", "max"
		if l.CFSQuota > 0 {
			cpuMax = fmt.Sprintf("%d %d", l.CFSQuota, cfsPeriod)
		}
		if l.MemoryBytes > 0 {
			memMax = strconv.FormatInt(l.MemoryBytes, 10)
		}
		for _, w := range []struct{ file, value string }{
			{"cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
			{"memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)},
			{"cpu.max", cpuMax},
			{"memory.max", memMax},
		} {
			path := filepath.Join(dir, w.file)
			if _, err := os.Stat(path); err != nil {
				continue // not this hierarchy's controller
			}
			if err := os.WriteFile(path, []byte(w.value), 0o644); err != nil {
				return fmt.Errorf("cgroup %s: %s=%s: %w", dir, w.file, w.value, err)
			}
		}
	}
	return nil
}

func readInt(dir, file string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// OOMKills returns how many processes the OOM killer killed in rel and
// below (v1 memory.oom_control, v2 memory.events): the largest count of
// the subtree's cgroups, since kernels count them hierarchically or not.
func OOMKills(rel string) int64 {
	dirs, err := Subtree(rel)
	if err != nil {
		return 0
	}
	var most int64
	for _, dir := range dirs {
		for _, file := range []string{"memory.oom_control", "memory.events"} {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
					if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
						most = max(most, n)
					}
				}
			}
		}
	}
	return most
}
