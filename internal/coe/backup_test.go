package coe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/testserver"
)

func (e *testEnv) createBackup(name, cluster string) {
	e.t.Helper()
	_, err := e.wc.ClusterBackups(ns).Create(e.ctx, &wharfv1.ClusterBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       wharfv1.ClusterBackupSpec{Cluster: cluster},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create backup %s: %v", name, err)
	}
}

// waitBackup waits until the backup is Completed or Failed.
func (e *testEnv) waitBackup(name string) *wharfv1.ClusterBackup {
	e.t.Helper()
	var bk *wharfv1.ClusterBackup
	testserver.WaitFor(e.t, "backup "+name, waitLong, func() (bool, error) {
		var err error
		bk, err = e.wc.ClusterBackups(ns).Get(e.ctx, name, metav1.GetOptions{})
		return err == nil && (bk.Status.Phase == wharfv1.BackupCompleted || bk.Status.Phase == wharfv1.BackupFailed), err
	})
	return bk
}

func TestBackupTakenKeptAndDeleted(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	e.start(func(c *Config) { c.BackupDir = dir })
	e.createCluster("demo", 0)
	cl := e.waitStatus("demo", wharfv1.StatusCreateComplete)
	if _, err := e.kube(cl).CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "precious"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e.createBackup("demo-1", "demo")
	bk := e.waitBackup("demo-1")
	if bk.Status.Phase != wharfv1.BackupCompleted {
		t.Fatalf("backup %s: %s", bk.Status.Phase, bk.Status.Reason)
	}
	path := filepath.Join(dir, ns, "demo", "demo-1.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	st := bk.Status
	if st.SHA256 != hex.EncodeToString(sum[:]) || st.SizeBytes != int64(len(data)) || st.Revision <= 0 || st.ObjectCount < 10 ||
		st.ClusterUID != string(cl.UID) || st.StartTime == nil || st.CompletionTime == nil {
		t.Errorf("status %+v for a file of %d bytes, sha256 %x", st, len(data), sum)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	if !slices.Contains(bk.Finalizers, backupFinalizer) {
		t.Errorf("finalizers %v", bk.Finalizers)
	}

	if err := e.wc.ClusterBackups(ns).Delete(e.ctx, "demo-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "backup gone", waitLong, func() (bool, error) {
		_, err := e.wc.ClusterBackups(ns).Get(e.ctx, "demo-1", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("backup file after delete: %v", err)
	}
}

func TestBackupOfUnreachableClusterFails(t *testing.T) {
	e := newEnv(t, nil)
	e.start(func(c *Config) { c.BackupDir, c.BackupRetry = t.TempDir(), 2*time.Second })
	e.createCluster("demo", 0)
	e.waitStatus("demo", wharfv1.StatusCreateComplete)
	for _, h := range e.prov.All() {
		e.prov.DeleteHost(e.ctx, h.Cluster, h.Name) // the master is gone
	}
	e.createBackup("demo-1", "demo")
	bk := e.waitBackup("demo-1")
	if bk.Status.Phase != wharfv1.BackupFailed || !strings.Contains(bk.Status.Reason, "snapshot from") {
		t.Errorf("backup of a dead cluster: %s %q", bk.Status.Phase, bk.Status.Reason)
	}
}

func TestParseBackupSchedule(t *testing.T) {
	for _, tt := range []struct {
		labels map[string]string
		want   backupSchedule
		ok     bool
		err    string
	}{
		{labels: nil},
		{labels: map[string]string{"backup_interval": "1h"}, want: backupSchedule{time.Hour, 7}, ok: true},
		{labels: map[string]string{"backup_interval": "30m", "backup_retention": "2"}, want: backupSchedule{30 * time.Minute, 2}, ok: true},
		{labels: map[string]string{"backup_interval": "10s"}, err: "at least 1m0s"},
		{labels: map[string]string{"backup_interval": "daily"}, err: "want a duration"},
		{labels: map[string]string{"backup_interval": "1h", "backup_retention": "0"}, err: "at least 1"},
	} {
		got, ok, err := parseBackupSchedule(tt.labels)
		if ok != tt.ok || (tt.ok && got != tt.want) || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%v: %+v %v %v", tt.labels, got, ok, err)
		}
	}
}

func TestPlanSchedule(t *testing.T) {
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	cl := &wharfv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "demo", UID: types.UID("u1")}}
	backup := func(age time.Duration, deleting bool) *wharfv1.ClusterBackup {
		b := &wharfv1.ClusterBackup{ObjectMeta: metav1.ObjectMeta{
			Name:              fmt.Sprintf("demo-auto-%s", now.Add(-age).Format("20060102150405")),
			CreationTimestamp: metav1.NewTime(now.Add(-age)),
		}}
		if deleting {
			b.DeletionTimestamp = new(metav1.NewTime(now))
		}
		return b
	}
	hourly := backupSchedule{time.Hour, 3}
	for _, tt := range []struct {
		name      string
		s         backupSchedule
		scheduled []*wharfv1.ClusterBackup
		take      string
		drop      []string
	}{
		{name: "first", s: hourly, take: "demo-auto-20261208100000"},
		{name: "not due", s: hourly, scheduled: []*wharfv1.ClusterBackup{backup(30*time.Minute, false)}},
		{name: "due", s: hourly, scheduled: []*wharfv1.ClusterBackup{backup(time.Hour, false)}, take: "demo-auto-20261208100000"},
		{name: "due, oldest beyond retention dropped", s: hourly,
			scheduled: []*wharfv1.ClusterBackup{backup(2*time.Hour, false), backup(4*time.Hour, false), backup(3*time.Hour, false), backup(5*time.Hour, false)},
			take:      "demo-auto-20261208100000", drop: []string{"demo-auto-20261208050000", "demo-auto-20261208060000"}},
		{name: "not due, over retention", s: hourly,
			scheduled: []*wharfv1.ClusterBackup{backup(10*time.Minute, false), backup(70*time.Minute, false), backup(130*time.Minute, false), backup(190*time.Minute, false)},
			drop:      []string{"demo-auto-20261208065000"}},
		{name: "deleting ones do not count", s: hourly,
			scheduled: []*wharfv1.ClusterBackup{backup(10*time.Minute, true), backup(2*time.Hour, false)},
			take:      "demo-auto-20261208100000"},
		{name: "retention one", s: backupSchedule{time.Hour, 1}, scheduled: []*wharfv1.ClusterBackup{backup(2*time.Hour, false)},
			take: "demo-auto-20261208100000", drop: []string{"demo-auto-20261208080000"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			take, drop := planSchedule(cl, tt.s, tt.scheduled, now)
			if take != tt.take || !cmp.Equal(drop, tt.drop) {
				t.Errorf("take %q drop %v, want %q %v", take, drop, tt.take, tt.drop)
			}
		})
	}
}

func TestClusterFromBackup(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	e.start(func(c *Config) { c.BackupDir = dir })
	e.createCluster("demo", 1)
	cl := e.waitStatus("demo", wharfv1.StatusCreateComplete)
	kube := e.kube(cl)
	if _, err := kube.CoreV1().ConfigMaps("default").Create(e.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "precious"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createBackup("demo-1", "demo")
	if bk := e.waitBackup("demo-1"); bk.Status.Phase != wharfv1.BackupCompleted {
		t.Fatalf("backup: %s %s", bk.Status.Phase, bk.Status.Reason)
	}
	if err := kube.CoreV1().ConfigMaps("default").Delete(e.ctx, "precious", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	e.createCluster("again", 1, func(c *wharfv1.Cluster) { c.Spec.FromBackup = "demo-1" })
	again := e.waitStatus("again", wharfv1.StatusCreateComplete)
	if again.Status.APIAddress == cl.Status.APIAddress {
		t.Fatalf("the restored cluster shares the API address %s", cl.Status.APIAddress)
	}
	rkube := e.kube(again)
	cm, err := rkube.CoreV1().ConfigMaps("default").Get(e.ctx, "precious", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "v" {
		t.Fatalf("configmap in the restored cluster: %v %v", cm, err)
	}
	// Only the new cluster's nodes: the old one's were dropped at the restore.
	nodes, err := rkube.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if !strings.HasPrefix(n.Name, "again-") {
			t.Errorf("node %s in the restored cluster", n.Name)
		}
	}
	// Its master got the snapshot and the flags; the old cluster is untouched.
	if _, err := kube.CoreV1().ConfigMaps("default").Get(e.ctx, "precious", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old cluster's deleted configmap: %v", err)
	}
}

func TestClusterFromBadBackupFails(t *testing.T) {
	e := newEnv(t, nil)
	dir := t.TempDir()
	e.start(func(c *Config) { c.BackupDir = dir })
	e.createCluster("demo", 0)
	e.waitStatus("demo", wharfv1.StatusCreateComplete)
	e.createBackup("demo-1", "demo")
	e.createBackup("demo-2", "demo")
	e.waitBackup("demo-1")
	e.waitBackup("demo-2")
	// One file corrupted, one truncated, behind the service's back.
	p1, p2 := filepath.Join(dir, ns, "demo", "demo-1.db"), filepath.Join(dir, ns, "demo", "demo-2.db")
	data, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(p1, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p2, 4096); err != nil {
		t.Fatal(err)
	}
	before := len(e.prov.All())
	for backup, want := range map[string]string{"demo-1": "corrupted", "demo-2": "truncated"} {
		name := "from-" + backup
		e.createCluster(name, 1, func(c *wharfv1.Cluster) { c.Spec.FromBackup = backup })
		cl := e.waitFor(name, "failed", func(cl *wharfv1.Cluster) bool { return cl.Status.Status == wharfv1.StatusCreateFailed })
		if !strings.Contains(cl.Status.StatusReason, "bad etcd snapshot") || !strings.Contains(cl.Status.StatusReason, want) {
			t.Errorf("%s: reason %q, want a bad snapshot (%s)", name, cl.Status.StatusReason, want)
		}
	}
	if got := len(e.prov.All()); got != before {
		t.Errorf("%d hosts after the refused restores, %d before", got, before)
	}
}

func TestScheduledBackup(t *testing.T) {
	e := newEnv(t, nil)
	e.start(func(c *Config) { c.BackupDir = t.TempDir() })
	e.createCluster("demo", 0, func(c *wharfv1.Cluster) {
		c.Spec.Labels = map[string]string{wharfv1.LabelBackupInterval: "1h", wharfv1.LabelBackupRetention: "2"}
	})
	cl := e.waitStatus("demo", wharfv1.StatusCreateComplete)
	var auto *wharfv1.ClusterBackup
	testserver.WaitFor(t, "a scheduled backup", waitLong, func() (bool, error) {
		list, err := e.wc.ClusterBackups(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i, b := range list.Items {
			if strings.HasPrefix(b.Name, "demo-auto-") && b.Status.Phase == wharfv1.BackupCompleted {
				auto = &list.Items[i]
			}
		}
		return auto != nil, nil
	})
	if auto.Labels[wharfv1.LabelScheduledBackup] != string(cl.UID) || auto.Spec.Cluster != "demo" {
		t.Errorf("scheduled backup %s: labels %v, cluster %s", auto.Name, auto.Labels, auto.Spec.Cluster)
	}
	// Not due again for an hour: still one backup after the next tick.
	time.Sleep(backupScheduleTick + time.Second)
	list, err := e.wc.ClusterBackups(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("backups after another tick: %d (%v)", len(list.Items), err)
	}
}
