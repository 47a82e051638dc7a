package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

// setBackupStatus plays the controller's part.
func (e *serviceEnv) setBackupStatus(name string, st wharfv1.ClusterBackupStatus) {
	e.t.Helper()
	ctx := context.Background()
	b, err := e.c.ClusterBackups("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	b.Status = st
	if _, err := e.c.ClusterBackups("default").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func TestClusterBackupCommands(t *testing.T) {
	e := newClusterEnv(t)
	out := e.must("cluster", "backup", "create", "demo", "--name", "demo-1")
	testserver.Contains(t, out, "Request to back up cluster demo as demo-1 has been accepted.")
	e.must("cluster", "backup", "create", "demo") // a default name
	e.fails([]string{"cluster", "backup", "create", "nope"}, `cluster "nope" not found in project "default"`)
	e.fails([]string{"cluster", "backup", "create", "demo", "--name", "demo-1"}, `cluster backup "demo-1" already exists`)
	e.fails([]string{"cluster", "backup", "create", "demo", "--name", "Bad_Name"}, `invalid cluster backup "Bad_Name"`, "--name (metadata.name)")

	sha := strings.Repeat("ab", 32)
	e.setBackupStatus("demo-1", wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupCompleted, SizeBytes: 3 << 20, SHA256: sha, Revision: 77, ObjectCount: 120})
	out = e.must("cluster", "backup", "list", "demo")
	testserver.Contains(t, out, "| name ", "| demo-1 ", "| Completed", "3.0 MiB", "| 77 ")
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must("cluster", "backup", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0]["name"] != "demo-1" || list[0]["revision"] != float64(77) {
		t.Errorf("list -f json: %v", list)
	}
	if got := e.must("cluster", "backup", "list", "other", "-f", "value", "-c", "name"); got != "" {
		t.Errorf("backups of another cluster: %q", got)
	}
	if got := e.must("cluster", "backup", "show", "demo/demo-1", "-f", "value", "-c", "sha256", "-c", "object_count"); got != sha+"\n120\n" {
		t.Errorf("show -f value: %q", got)
	}
	e.fails([]string{"cluster", "backup", "show", "other/demo-1"}, "backup demo-1 is of cluster demo, not other")
	e.fails([]string{"cluster", "backup", "show", "nope"}, `cluster backup "nope" not found`)

	// A cluster from a backup: a Completed one of the named cluster.
	e.fails([]string{"cluster", "create", "c2", "--template", "k8s-local", "--from-backup", "other/demo-1"}, "--from-backup: backup demo-1 is of cluster demo, not other")
	e.fails([]string{"cluster", "create", "c2", "--template", "k8s-local", "--from-backup", "nope"}, `--from-backup: cluster backup "nope" not found`)
	pending := e.must("cluster", "backup", "list", "-f", "value", "-c", "name", "-c", "phase")
	if !strings.Contains(pending, "demo-1 Completed") {
		t.Fatalf("backups: %q", pending)
	}
	e.must("cluster", "backup", "create", "demo", "--name", "demo-3")
	e.fails([]string{"cluster", "create", "c2", "--template", "k8s-local", "--from-backup", "demo-3"}, "backup demo-3 is Pending, not Completed")
	// No controller here: the CLI waits a moment for the service's check, then leaves it.
	restoreCheckTimeout = 300 * time.Millisecond
	t.Cleanup(func() { restoreCheckTimeout = 15 * time.Second })
	e.must("cluster", "create", "c2", "--template", "k8s-local", "--from-backup", "demo/demo-1")
	if got := e.must("cluster", "show", "c2", "-f", "value", "-c", "from_backup"); got != "demo-1\n" {
		t.Errorf("from_backup: %q", got)
	}

	// The service refuses the backup's file (the controller's part played
	// here): the CLI says why and deletes the cluster, of which nothing was made.
	restoreCheckTimeout = 10 * time.Second
	done := make(chan struct{})
	go func() {
		defer close(done)
		testserver.WaitFor(t, "c3 created", 10*time.Second, func() (bool, error) {
			_, err := e.c.Clusters("default").Get(context.Background(), "c3", metav1.GetOptions{})
			return err == nil, nil
		})
		e.setStatus("c3", func(s *wharfv1.ClusterStatus) {
			s.Status, s.StatusReason = wharfv1.StatusCreateFailed, "backup: bad etcd snapshot (corrupted)"
			s.Faults = map[string]string{wharfv1.StepBackup: "backup demo-1: bad etcd snapshot (corrupted)"}
		})
	}()
	e.fails([]string{"cluster", "create", "c3", "--template", "k8s-local", "--from-backup", "demo-1"}, "cluster c3 not created from backup demo-1: backup demo-1: bad etcd snapshot (corrupted)")
	<-done
	if _, err := e.c.Clusters("default").Get(context.Background(), "c3", metav1.GetOptions{}); err == nil {
		t.Error("the refused cluster is still there")
	}

	// A backup of a cluster being deleted is refused.
	e.setStatus("demo", func(s *wharfv1.ClusterStatus) { s.Status = wharfv1.StatusDeleteInProgress })
	e.fails([]string{"cluster", "backup", "create", "demo"}, "cluster demo is being deleted")

	out = e.must("cluster", "backup", "delete", "demo-1")
	testserver.Contains(t, out, "Request to delete backup demo-1 has been accepted.")
	e.fails([]string{"cluster", "backup", "show", "demo-1"}, `cluster backup "demo-1" not found`)
}
