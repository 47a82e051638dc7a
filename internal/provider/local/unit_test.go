package local

import (
	"os"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/provider"
)

// Tests without root: names, argument and file checks.

func TestNames(t *testing.T) {
	p := &Provider{cfg: Config{StateDir: "/var/lib/wharf-service/hosts"}}
	c := provider.ClusterRef{Name: "a-rather-long-cluster-name", UID: "0123456789abcdef"}
	n := p.namesFor(c, "a-rather-long-cluster-name-node-12")
	if len(n.veth) > 15 {
		t.Errorf("veth name %q is longer than 15 bytes", n.veth)
	}
	if want := "/wharf/a-rather-long-cluster-name-01234567/a-rather-long-cluster-name-node-12"; n.cgroupRoot != want {
		t.Errorf("cgroup root %q, want %q", n.cgroupRoot, want)
	}
	// Long names still leave containerd's socket under the host's state
	// dir within the 107 bytes of a unix socket path.
	if sock := n.dir + "/agent" + containerdSocket; len(sock) > maxSocketPath {
		t.Errorf("socket path %q is %d bytes", sock, len(sock))
	}
	other := p.namesFor(provider.ClusterRef{Name: c.Name, UID: "fedcba9876543210"}, "a-rather-long-cluster-name-node-12")
	if other.veth == n.veth || other.netns == n.netns || other.dir == n.dir {
		t.Errorf("two clusters' hosts share names: %+v %+v", n, other)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b"} {
		if checkName("host name", bad) == nil {
			t.Errorf("checkName(%q) accepted it", bad)
		}
	}
}

func TestExpandAndCheckArgs(t *testing.T) {
	got := expandArgs([]string{"--listen", "$(HOST_IP):6443", "x$(STATE_DIR)/a$(HOST_IP)"}, "10.123.0.2", "/s")
	if want := []string{"--listen", "10.123.0.2:6443", "x/s/a10.123.0.2"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("expandArgs = %q, want %q", got, want)
	}
	long := "/" + strings.Repeat("d", 80)
	for _, args := range [][]string{{"agent", "--state-dir", long}, {"agent", "--state-dir=" + long}} {
		if checkSocketPaths(args) == nil {
			t.Errorf("checkSocketPaths(%q) accepted a socket path over 107 bytes", args)
		}
	}
	for _, args := range [][]string{{"agent", "--state-dir", "/short"}, {"server", "--data-dir", long}, nil} {
		if err := checkSocketPaths(args); err != nil {
			t.Errorf("checkSocketPaths(%q): %v", args, err)
		}
	}
}

func TestCheckFiles(t *testing.T) {
	for _, bad := range []string{"", "/etc/passwd", "..", "../x", "a/../../x", "host.json", "./wharf.log"} {
		if checkFiles(map[string][]byte{bad: nil}) == nil {
			t.Errorf("checkFiles accepted %q", bad)
		}
	}
	if err := checkFiles(map[string][]byte{"server/pki/ca.key": nil, "registry/token": nil}); err != nil {
		t.Error(err)
	}
}

func TestProcStat(t *testing.T) {
	state, st, err := procStat(os.Getpid())
	if err != nil || st == 0 || state == 'Z' {
		t.Fatalf("procStat(self) = %c, %d, %v", state, st, err)
	}
	r := &record{PID: os.Getpid(), StartTime: st}
	if !r.alive() {
		t.Errorf("this process is not alive")
	}
	r.StartTime++
	if r.alive() {
		t.Errorf("a process with another start time is alive: pid reuse goes unnoticed")
	}
}
