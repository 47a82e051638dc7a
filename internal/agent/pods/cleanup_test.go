package pods

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestRemoveCgroups(t *testing.T) {
	fsRoot := t.TempDir()
	m := &Manager{layout: layout{cgroupRoot: "wharf/n1"}, cgroupFS: fsRoot}
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(fsRoot, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Two controllers with the pod's cgroup and its containers', one
	// without, and a neighbour that must stay.
	mk("memory/wharf/n1/poduid1/ctr-a/nested")
	mk("memory/wharf/n1/poduid1/ctr-b")
	mk("cpu,cpuacct/wharf/n1/poduid1/ctr-a")
	mk("pids/wharf/n1")
	mk("memory/wharf/n1/poduid2/ctr")
	if err := os.Symlink("cpu,cpuacct", filepath.Join(fsRoot, "cpu")); err != nil {
		t.Fatal(err)
	}
	if got := m.cgroupPods(); len(got) != 2 {
		t.Errorf("cgroupPods = %v", got)
	}
	if err := m.removeCgroups("uid1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"memory/wharf/n1/poduid1", "cpu,cpuacct/wharf/n1/poduid1"} {
		if exists(filepath.Join(fsRoot, p)) {
			t.Errorf("%s remains", p)
		}
	}
	if !exists(filepath.Join(fsRoot, "memory/wharf/n1/poduid2/ctr")) {
		t.Error("another pod's cgroup was removed")
	}
	// Removing again is fine.
	if err := m.removeCgroups("uid1"); err != nil {
		t.Errorf("second removal: %v", err)
	}
	if diff := cmp.Diff([]types.UID{"uid2"}, m.cgroupPods()); diff != "" {
		t.Errorf("cgroupPods (-want +got):\n%s", diff)
	}
}

func TestHostsContent(t *testing.T) {
	pod := testPod("web")
	pod.Spec.Hostname, pod.Spec.Subdomain = "web-0", "web"
	pod.Spec.HostAliases = []v1.HostAlias{{IP: "10.1.1.1", Hostnames: []string{"db", "db.local"}}}
	got := string(hostsContent(pod, []string{"10.244.0.5"}, "cluster.local"))
	want := `# Kubernetes-managed hosts file.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
10.244.0.5	web-0.web.default.svc.cluster.local	web-0

# Entries added by HostAliases.
10.1.1.1	db	db.local
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	content := "2025-01-01T00:00:00.000000000Z stdout F starting\n" +
		"2025-01-01T00:00:01.000000000Z stderr P panic: \n" +
		"2025-01-01T00:00:01.000000001Z stderr F boom\n" +
		"2025-01-01T00:00:02.000000000Z stderr F exit status 2\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "starting\npanic: boom\nexit status 2"
	if got := logTail(path); got != want {
		t.Errorf("logTail = %q, want %q", got, want)
	}
	if got := logTail(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("missing log: %q", got)
	}
}
