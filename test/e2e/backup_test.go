//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/testserver"
)

// TestClusterBackupRestore is the backup session: a cluster with
// the hello app and a ConfigMap, a backup, the objects deleted, a new
// cluster from the backup with the objects back and the app's pods
// running on the new cluster's nodes; corrupted and truncated backup files
// refused before anything is made; a backup of a cluster being deleted
// refused.
func TestClusterBackupRestore(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "src", "--template", "k8s-local", "--node-count", "1", "--wait")
	k, _ := s.cluster("src")
	k.Eventually(`src-node-0\s+Ready`, "get", "nodes")
	k.Run("apply", "-f", "examples/hello/")
	k.Run("rollout", "status", "deployment/hello", "--timeout=90s")
	k.Run("create", "configmap", "precious", "--from-literal", "k=v")

	testserver.Contains(t, s.must("cluster", "backup", "create", "src", "--name", "src-1", "--wait"), "src-1", "Completed")
	show := s.must("cluster", "backup", "show", "src/src-1", "-f", "value", "-c", "phase", "-c", "sha256")
	file := filepath.Join(s.stateDir, "backups", "default", "src", "src-1.db")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(show, "Completed\n") {
		t.Fatalf("backup file: %v %v; show: %q", fi, err, show)
	}
	k.Run("delete", "deployment", "hello")
	k.Run("delete", "configmap", "precious")

	// Two more backups, damaged behind the service's back.
	s.must("cluster", "backup", "create", "src", "--name", "src-2", "--wait")
	s.must("cluster", "backup", "create", "src", "--name", "src-3", "--wait")
	bad := filepath.Join(s.stateDir, "backups", "default", "src", "src-2.db")
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(s.stateDir, "backups", "default", "src", "src-3.db"), 8192); err != nil {
		t.Fatal(err)
	}
	for backup, want := range map[string]string{"src-2": "corrupted", "src-3": "truncated"} {
		name := "from-" + backup
		out, err := s.wharf("cluster", "create", name, "--template", "k8s-local", "--node-count", "1", "--from-backup", "src/"+backup, "--wait")
		if err == nil || !strings.Contains(out, "not created from backup "+backup) || !strings.Contains(out, "bad etcd snapshot") || !strings.Contains(out, want) {
			t.Errorf("cluster from %s: %v\n%s", backup, err, out)
		}
		// Nothing made: no cluster left, no host.
		if out := s.must("cluster", "list", "-f", "value", "-c", "name"); strings.Contains(out, name) {
			t.Errorf("cluster from %s still listed: %q", backup, out)
		}
		netns, _ := exec.Command("ip", "netns", "list").Output()
		cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + name + "-*")
		if strings.Contains(string(netns), "wh-"+name) || len(cgroups) > 0 {
			t.Errorf("cluster from %s made hosts: %s %v", backup, netns, cgroups)
		}
	}

	start := time.Now()
	s.must("cluster", "create", "dst", "--template", "k8s-local", "--node-count", "1", "--from-backup", "src/src-1", "--wait")
	t.Logf("cluster from a backup: CREATE_COMPLETE in %s", time.Since(start))
	if s.field("dst", "api_address") == s.field("src", "api_address") {
		t.Fatal("the new cluster has the old one's API address")
	}
	dk, dclient := s.cluster("dst")
	dk.Eventually(`dst-node-0\s+Ready`, "get", "nodes")
	testserver.Contains(t, dk.Run("get", "configmap", "precious", "-o", "jsonpath={.data.k}"), "v")
	dk.Run("rollout", "status", "deployment/hello", "--timeout=90s")
	ctx := testContext(t)
	testserver.WaitFor(t, "hello's pods on the new nodes only", 90*time.Second, func() (bool, error) {
		pods, err := dclient.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		for _, p := range pods.Items {
			if !strings.HasPrefix(p.Spec.NodeName, "dst-") || p.Status.Phase != corev1.PodRunning {
				return false, nil
			}
		}
		return true, nil
	})
	nodes := dk.Run("get", "nodes", "-o", "name")
	if strings.Contains(nodes, "src-") {
		t.Errorf("the old cluster's nodes in the new one: %s", nodes)
	}
	// The old cluster still lacks what was deleted from it.
	if out, err := k.Cmd("", "get", "configmap", "precious").CombinedOutput(); err == nil {
		t.Errorf("configmap back in the old cluster: %s", out)
	}

	// A cluster being deleted is not backed up (a finalizer of the test's
	// holds it in deletion); its backups outlive it.
	sk := testserver.NewKubectl(t, "33", s.kubeconfig())
	sk.Run("patch", "clusters.wharf.dev", "src", "--type", "json", "-p", `[{"op":"add","path":"/metadata/finalizers/-","value":"e2e.wharf.dev/hold"}]`)
	s.must("cluster", "delete", "src")
	if out, err := s.wharf("cluster", "backup", "create", "src"); err == nil || !strings.Contains(out, "being deleted") {
		t.Errorf("backup of a cluster being deleted: %v\n%s", err, out)
	}
	// Once the controller is done (its finalizer gone), the test's goes.
	sk.Eventually(`^\["e2e.wharf.dev/hold"\]$`, "get", "clusters.wharf.dev", "src", "-o", "jsonpath={.metadata.finalizers}")
	sk.Run("patch", "clusters.wharf.dev", "src", "--type", "merge", "-p", `{"metadata":{"finalizers":null}}`)
	s.must("cluster", "delete", "dst", "--wait")
	testserver.WaitFor(t, "src gone", 90*time.Second, func() (bool, error) {
		out, _ := s.wharf("cluster", "list", "-f", "value", "-c", "name")
		return !strings.Contains(out, "src"), nil
	})
	testserver.Contains(t, s.must("cluster", "backup", "list", "src"), "src-1")
	s.must("cluster", "backup", "delete", "src-1")
	testserver.WaitFor(t, "backup file removed", 30*time.Second, func() (bool, error) {
		_, err := os.Stat(file)
		return os.IsNotExist(err), nil
	})
}

// TestServiceBackupRestoreE2E: a running service's state archived, the
// service stopped, the archive restored into a new state dir and started:
// the same clusters (stored), templates and CA. A damaged archive is refused
// and leaves nothing.
func TestServiceBackupRestoreE2E(t *testing.T) {
	s := newService(t)
	if out, err := s.wharf("service", "start", "--state-dir", s.stateDir, "--listen", s.listen, "--disable-cluster-controller"); err != nil {
		t.Fatalf("service start: %v\n%s", err, out)
	}
	s.template("k8s-local")
	s.must("cluster", "create", "kept", "--template", "k8s-local", "--node-count", "3")
	archive := filepath.Join(testDir(t, "wsb"), "service.tgz")
	testserver.Contains(t, s.must("service", "backup", "--state-dir", s.stateDir, "-o", archive), "running service", "sha256")
	s.must("service", "stop", "--state-dir", s.stateDir)

	// Damaged copies are refused, nothing is left.
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(filepath.Dir(archive), "bad.tgz")
	os.WriteFile(bad, data[:len(data)-100], 0o600)
	target := filepath.Join(filepath.Dir(archive), "restored")
	if out, err := s.wharf("service", "restore", "--state-dir", target, "-f", bad); err == nil || !strings.Contains(out, "bad service backup") {
		t.Errorf("restore of a truncated archive: %v\n%s", err, out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s: %v", target, err)
	}

	r := newService(t)
	r.stateDir = target
	testserver.Contains(t, r.must("service", "restore", "--state-dir", r.stateDir, "-f", archive), "service state restored into")
	if out, err := r.wharf("service", "start", "--state-dir", r.stateDir, "--listen", r.listen, "--disable-cluster-controller"); err != nil {
		t.Fatalf("start of the restored service: %v\n%s", err, out)
	}
	testserver.Contains(t, r.must("cluster", "list", "-f", "value", "-c", "name", "-c", "node_count"), "kept 3")
	testserver.Contains(t, r.must("cluster", "template", "list"), "k8s-local")
	old, _ := os.ReadFile(filepath.Join(s.stateDir, "server", "pki", "ca.crt"))
	restored, _ := os.ReadFile(filepath.Join(r.stateDir, "server", "pki", "ca.crt"))
	if len(old) == 0 || string(old) != string(restored) {
		t.Error("the restored service has another CA")
	}
	if out, err := r.wharf("service", "restore", "--state-dir", r.stateDir, "-f", archive); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("restore over a live state dir: %v\n%s", err, out)
	}
}

// TestClusterBackupToHA: a backup of a one-master cluster restored into a
// cluster of three masters: the first restores the snapshot, the others
// join it, and the objects are there through the cluster's API address.
func TestClusterBackupToHA(t *testing.T) {
	s := startService(t)
	s.template("k8s-local")
	s.must("cluster", "create", "one", "--template", "k8s-local", "--node-count", "0", "--wait")
	k, _ := s.cluster("one")
	k.Run("create", "configmap", "precious", "--from-literal", "k=v")
	s.must("cluster", "backup", "create", "one", "--name", "one-1", "--wait")
	s.must("cluster", "create", "three", "--template", "k8s-local", "--master-count", "3", "--node-count", "1", "--from-backup", "one-1", "--wait")
	hk, _ := s.cluster("three")
	testserver.Contains(t, hk.Run("get", "configmap", "precious", "-o", "jsonpath={.data.k}"), "v")
	hk.Eventually(`three-node-0\s+Ready`, "get", "nodes")
	if nodes := hk.Run("get", "nodes", "-o", "name"); strings.Contains(nodes, "one-") {
		t.Errorf("the old cluster's nodes in the new one: %s", nodes)
	}
	if got := strings.Fields(s.field("three", "master_addresses")); len(got) != 3 {
		t.Errorf("master addresses %v, want 3", got)
	}
	testserver.WaitFor(t, "HEALTHY", 90*time.Second, func() (bool, error) {
		return s.field("three", "health_status") == "HEALTHY", nil
	})
}
