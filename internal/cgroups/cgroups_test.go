package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseLimits(t *testing.T) {
	tests := []struct {
		cpu, mem      string
		quota, memory int64
		bad           bool
	}{
		{"", "", -1, -1, false},
		{"2", "4Gi", 200000, 4 << 30, false},
		{"500m", "64Mi", 50000, 64 << 20, false},
		{"1m", "", 1000, -1, false}, // the kernel's minimum quota
		{"-1", "", 0, 0, true},
		{"", "lots", 0, 0, true},
	}
	for _, tt := range tests {
		l, err := ParseLimits(tt.cpu, tt.mem)
		if (err != nil) != tt.bad || (!tt.bad && (l.CFSQuota != tt.quota || l.MemoryBytes != tt.memory)) {
			t.Errorf("ParseLimits(%q, %q) = %+v, %v; want %d, %d (error: %v)", tt.cpu, tt.mem, l, err, tt.quota, tt.memory, tt.bad)
		}
	}
}

// TestSubtree: a process joined to a subtree with limits is found there,
// killed with everything below, and the subtree and its empty parents go.
func TestSubtree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := Freezer(); err != nil {
		t.Skip("needs the cgroup v1 freezer: ", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	parent := "/wharf-cgroups-test"
	rel := parent + "/" + hex.EncodeToString(b)
	t.Cleanup(func() { Kill(rel); Remove(rel); RemoveEmptyParents(rel) })

	l, err := ParseLimits("500m", "64Mi")
	if err != nil {
		t.Fatal(err)
	}
	if err := Set(rel, l); err != nil {
		t.Fatalf("Set: %v", err)
	}
	hs, _ := Hierarchies()
	for _, h := range hs {
		for file, want := range map[string]string{"cpu.cfs_quota_us": "50000", "memory.limit_in_bytes": "67108864"} {
			if data, err := os.ReadFile(filepath.Join(h.Dir, rel, file)); err == nil && strings.TrimSpace(string(data)) != want {
				t.Errorf("%s in %s = %s, want %s", file, h.Dir, data, want)
			}
		}
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	if err := Join(rel+"/child", cmd.Process.Pid); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if pids := SubtreePids(rel); !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("SubtreePids = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if err := Kill(rel); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if pids := SubtreePids(rel); len(pids) > 0 {
		t.Errorf("after Kill: %v", pids)
	}
	if err := Remove(rel); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	RemoveEmptyParents(rel)
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h.Dir, parent)); !os.IsNotExist(err) {
			t.Errorf("%s left in %s (%v)", parent, h.Dir, err)
		}
	}
}
