package resources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

func newBackup(name, cluster string) *wharfv1.ClusterBackup {
	return &wharfv1.ClusterBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       wharfv1.ClusterBackupSpec{Cluster: cluster},
	}
}

func TestClusterBackupValidation(t *testing.T) {
	for _, tt := range []struct {
		name, backup, cluster string
		want                  []wantErr
	}{
		{name: "fine", backup: "demo-1", cluster: "demo"},
		{name: "no cluster", backup: "demo-1", want: []wantErr{required("spec.cluster")}},
		{name: "bad cluster", backup: "demo-1", cluster: "Demo_1", want: []wantErr{invalid("spec.cluster")}},
		{name: "bad name", backup: "../etc", cluster: "demo", want: []wantErr{invalid("metadata.name")}},
		{name: "long name", backup: "b" + strings.Repeat("x", 63), cluster: "demo", want: []wantErr{invalid("metadata.name"), tooLong("metadata.name")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, ClusterBackups().Validate(newBackup(tt.backup, tt.cluster)), tt.want...)
		})
	}
	old := newBackup("demo-1", "demo")
	moved := old.DeepCopy()
	moved.Spec.Cluster = "other"
	checkErrs(t, ClusterBackups().ValidateUpdate(moved, old), invalid("spec"))

	for _, tt := range []struct {
		name   string
		status wharfv1.ClusterBackupStatus
		want   []wantErr
	}{
		{name: "pending", status: wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupPending}},
		{name: "completed", status: wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupCompleted, SHA256: strings.Repeat("a", 64), SizeBytes: 10}},
		{name: "completed without checksum", status: wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupCompleted}, want: []wantErr{invalid("status.sha256")}},
		{name: "failed without reason", status: wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupFailed}, want: []wantErr{required("status.reason")}},
		{name: "unknown phase", status: wharfv1.ClusterBackupStatus{Phase: "Done"}, want: []wantErr{notSupported("status.phase")}},
		{name: "negative size", status: wharfv1.ClusterBackupStatus{SizeBytes: -1}, want: []wantErr{invalid("status.sizeBytes")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := old.DeepCopy()
			b.Status = tt.status
			checkErrs(t, ClusterBackups().ValidateStatus(b, old), tt.want...)
		})
	}
}

func TestClusterBackupAdmit(t *testing.T) {
	ctx := context.Background()
	deleting := metav1.Now()
	cluster := func(name, status string, mutate ...func(*wharfv1.Cluster)) *wharfv1.Cluster {
		c := &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		c.Status.Status = status
		if status != wharfv1.StatusCreateInProgress {
			c.Status.APIAddress = "https://10.0.0.2:6443"
		}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	objs := memObjects{wharfv1.SchemeGroupVersion.WithResource("clusters"): {
		cluster("demo", wharfv1.StatusCreateComplete),
		cluster("grown", wharfv1.StatusUpdateFailed),
		cluster("new", wharfv1.StatusCreateInProgress),
		cluster("failed", wharfv1.StatusCreateFailed),
		cluster("old", wharfv1.StatusCreateComplete, func(c *wharfv1.Cluster) { c.DeletionTimestamp = &deleting }),
		cluster("going", wharfv1.StatusDeleteInProgress),
	}}
	for _, tt := range []struct {
		cluster string
		check   func(error) bool
		msg     string
	}{
		{"demo", func(err error) bool { return err == nil }, ""},
		{"grown", func(err error) bool { return err == nil }, ""},
		{"gone", apierrors.IsInvalid, `cluster "gone" not found`},
		{"new", apierrors.IsConflict, "not created yet"},
		{"failed", apierrors.IsConflict, "not created yet"},
		{"old", apierrors.IsConflict, "being deleted"},
		{"going", apierrors.IsConflict, "being deleted"},
	} {
		err := ClusterBackups().Admit(ctx, newBackup(tt.cluster+"-b", tt.cluster), nil, objs)
		if !tt.check(err) || (err != nil && !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("backup of %s: %v", tt.cluster, err)
		}
	}
}

func TestAdmitFromBackup(t *testing.T) {
	ctx := context.Background()
	backup := func(name, phase string) *wharfv1.ClusterBackup {
		b := newBackup(name, "demo")
		b.Status.Phase = phase
		return b
	}
	objs := memObjects{
		wharfv1.SchemeGroupVersion.WithResource("clustertemplates"): {
			&wharfv1.ClusterTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "t"}},
		},
		wharfv1.SchemeGroupVersion.WithResource("clusterbackups"): {
			backup("done", wharfv1.BackupCompleted), backup("pending", wharfv1.BackupPending), backup("failed", wharfv1.BackupFailed),
		},
	}
	for _, tt := range []struct {
		from, msg string
	}{
		{"", ""},
		{"done", ""},
		{"missing", `cluster backup "missing" not found`},
		{"pending", "Pending, not Completed"},
		{"failed", "Failed, not Completed"},
	} {
		c := &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "new"}, Spec: wharfv1.ClusterSpec{Template: "t", FromBackup: tt.from}}
		err := Clusters().Admit(ctx, c, nil, objs)
		if (tt.msg == "") != (err == nil) || (err != nil && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.msg))) {
			t.Errorf("from %q: %v, want %q", tt.from, err, tt.msg)
		}
	}
	c := &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "new"}, Spec: wharfv1.ClusterSpec{Template: "t", FromBackup: "done"}}
	changed := c.DeepCopy()
	changed.Spec.FromBackup = "other"
	checkErrs(t, Clusters().ValidateUpdate(changed, c), invalid("spec.fromBackup"))
}

func TestClusterBackupRow(t *testing.T) {
	b := newBackup("demo-1", "demo")
	b.CreationTimestamp = ago(time.Hour)
	b.Status = wharfv1.ClusterBackupStatus{Phase: wharfv1.BackupCompleted, SizeBytes: 3 << 20, Revision: 42}
	want := []any{"demo-1", "demo", "Completed", "3Mi", int64(42), "60m", ""}
	if diff := cmp.Diff(want, clusterBackupRow(b, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestBackupLabels(t *testing.T) {
	for _, tt := range []struct {
		labels map[string]string
		want   []wantErr
	}{
		{labels: map[string]string{"backup_interval": "1h", "backup_retention": "24"}},
		{labels: map[string]string{"backup_retention": "3"}}, // no schedule: unused
		{labels: map[string]string{"backup_interval": "daily"}, want: []wantErr{invalid("spec.labels[backup_interval]")}},
		{labels: map[string]string{"backup_interval": "30s"}, want: []wantErr{invalid("spec.labels[backup_interval]")}},
		{labels: map[string]string{"backup_interval": "1h", "backup_retention": "0"}, want: []wantErr{invalid("spec.labels[backup_retention]")}},
	} {
		c := &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "demo"}, Spec: wharfv1.ClusterSpec{Template: "t", Labels: tt.labels}}
		Clusters().Default(c)
		checkErrs(t, Clusters().Validate(c), tt.want...)
	}
}
