package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"wharf.dev/wharf/internal/cgroups"
)

// Cgroup reads one cgroup subtree's CPU and memory, in cgroup v1 (cpuacct
// and memory hierarchies) or v2.
type Cgroup struct {
	// cpuDir and memDir are the subtree's directories in the hierarchies
	// holding cpuacct (v1) or cpu (v2), and memory.
	cpuDir, memDir string
	v2             bool
}

// CgroupUsage is one reading.
type CgroupUsage struct {
	CPUNanoSeconds  uint64 // cumulative
	UsageBytes      uint64
	WorkingSetBytes uint64
}

// NewCgroup finds rel (e.g. /wharf/<node>) in the mounted hierarchies.
func NewCgroup(rel string) (*Cgroup, error) {
	hs, err := cgroups.Hierarchies()
	if err != nil {
		return nil, err
	}
	return newCgroup(hs, rel)
}

func newCgroup(hs []cgroups.Hierarchy, rel string) (*Cgroup, error) {
	// v1 controllers count first: a hybrid setup mounts an empty cgroup2
	// beside them.
	c := &Cgroup{}
	var unified string
	for _, h := range hs {
		switch {
		case h.V2:
			unified = filepath.Join(h.Dir, rel)
		case h.Opts["cpuacct"]:
			c.cpuDir = filepath.Join(h.Dir, rel)
		case h.Opts["memory"]:
			c.memDir = filepath.Join(h.Dir, rel)
		}
	}
	if c.cpuDir != "" && c.memDir != "" {
		return c, nil
	}
	if unified != "" {
		return &Cgroup{cpuDir: unified, memDir: unified, v2: true}, nil
	}
	return nil, fmt.Errorf("cgroup %s: no cpu accounting or memory hierarchy mounted", rel)
}

// Read returns the subtree's cumulative CPU time and its memory use.
func (c *Cgroup) Read() (CgroupUsage, error) {
	var u CgroupUsage
	var err error
	if c.v2 {
		st, err := readKeyed(filepath.Join(c.cpuDir, "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.CPUNanoSeconds = st["usage_usec"] * 1000
		if u.UsageBytes, err = readUint(filepath.Join(c.memDir, "memory.current")); err != nil {
			return u, err
		}
		mem, err := readKeyed(filepath.Join(c.memDir, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.WorkingSetBytes = workingSet(u.UsageBytes, mem["inactive_file"])
		return u, nil
	}
	if u.CPUNanoSeconds, err = readUint(filepath.Join(c.cpuDir, "cpuacct.usage")); err != nil {
		return u, err
	}
	if u.UsageBytes, err = readUint(filepath.Join(c.memDir, "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	mem, err := readKeyed(filepath.Join(c.memDir, "memory.stat"))
	if err != nil {
		return u, err
	}
	// total_ counts the whole subtree, as usage_in_bytes does.
	u.WorkingSetBytes = workingSet(u.UsageBytes, mem["total_inactive_file"])
	return u, nil
}

// workingSet is the kubelet's (cAdvisor's): usage less inactive file
// pages, never below zero.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", path, err)
	}
	return v, nil
}

// readKeyed reads a "key value" per line file (memory.stat, cpu.stat).
func readKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return parseKeyed(b)
}

func parseKeyed(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue // e.g. a negative or "max" figure of a field we don't read
		}
		out[k] = n
	}
	if err := sc.Err(); err != nil {
		return nil, errors.New("cgroup stat: " + err.Error())
	}
	return out, nil
}
