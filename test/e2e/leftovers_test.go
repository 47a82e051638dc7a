//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// machineState is what a cluster may leave on the machine.
type machineState struct {
	shimSockets, cniResults []string
	forwardRules, natRules  string
	// routes of wharf's protocol (host-gw and unreachable ones).
	routes string
	// nftables tables (the service proxy's among them).
	nftTables string
}

func snapshot(t *testing.T) machineState {
	list := func(dir string) []string {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return names
	}
	ipt := func(args ...string) string {
		out, err := exec.Command("iptables", args...).Output()
		if err != nil {
			t.Fatalf("iptables %v: %v", args, err)
		}
		return string(out)
	}
	return machineState{
		shimSockets:  list("/run/containerd/s"),
		cniResults:   list("/var/lib/cni/results"),
		forwardRules: ipt("-S", "FORWARD"),
		natRules:     ipt("-t", "nat", "-S"),
		routes:       run(t, "ip", "route", "show", "proto", "87"),
		nftTables:    run(t, "nft", "list", "tables"),
	}
}

// TestNoLeftoversAfterPurge: after `wharf down --purge` no process, mount,
// network namespace, cgroup, bridge, shim socket, CNI cache entry, iptables
// rule, nftables table or file of the cluster remains.
func TestNoLeftoversAfterPurge(t *testing.T) {
	before := snapshot(t)
	c := upCluster(t)
	c.Run("apply", "-f", "examples/hello/")
	c.Run("rollout", "status", "deployment/hello", "--timeout=90s")
	var chosen struct{ Bridge, CgroupRoot, ClusterCIDR, ServiceCIDR string }
	data, err := os.ReadFile(filepath.Join(c.stateDir, "cluster.json"))
	if err != nil || json.Unmarshal(data, &chosen) != nil || chosen.Bridge == "" || chosen.CgroupRoot == "" {
		t.Fatalf("cluster.json: %v %s", err, data)
	}
	// While it runs, its ranges are held: nothing of them leaves by the
	// default route.
	if routes := run(t, "ip", "route", "show", "proto", "87"); !strings.Contains(routes, "unreachable "+chosen.ClusterCIDR) || !strings.Contains(routes, "unreachable "+chosen.ServiceCIDR) {
		t.Errorf("no unreachable routes for %s and %s:\n%s", chosen.ClusterCIDR, chosen.ServiceCIDR, routes)
	}
	if out, err := c.wharf("down", "--state-dir", c.stateDir, "--purge"); err != nil {
		t.Fatalf("wharf down --purge: %v\n%s", err, out)
	}

	if _, err := os.Stat(c.stateDir); !os.IsNotExist(err) {
		t.Errorf("state dir %s still there (%v)", c.stateDir, err)
	}
	// Processes: containerd, shims and containers all name the state dir
	// or live in the node's cgroups.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), c.stateDir) {
			t.Errorf("process still running: %s", strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + chosen.CgroupRoot); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	// Mounts, network namespaces included (they are mounted under the state dir).
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, c.stateDir) {
			t.Errorf("mount left: %s", line)
		}
	}
	if out, _ := exec.Command("ip", "link", "show", chosen.Bridge).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("bridge %s left:\n%s", chosen.Bridge, out)
	}
	after := snapshot(t)
	if diff := cmp.Diff(before, after, cmp.AllowUnexported(machineState{})); diff != "" {
		t.Errorf("machine state changed (-before +after):\n%s", diff)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}
