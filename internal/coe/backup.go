package coe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/controllers/controllerutil"
	"wharf.dev/wharf/internal/wire"
)

// Backups (docs/service.md, "Backups"): a ClusterBackup is taken once,
// through the cluster's API (wire.SnapshotPath, as its admin), into
// <BackupDir>/<namespace>/<cluster>/<backup>.db; the object's finalizer
// removes the file. Backups outlive their cluster: an operator restores a
// deleted cluster from them.

// backupFinalizer keeps a backup object until its file is gone.
const backupFinalizer = "wharf.dev/backup-file"

// backupTimeout bounds one snapshot's transfer.
const backupTimeout = 5 * time.Minute

// backups is the backup half of the controller.
type backups struct {
	c        *Controller
	log      *slog.Logger
	dir      string
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
}

func newBackups(c *Controller) *backups {
	b := &backups{
		c: c, log: c.log.With("component", "backups"), dir: c.cfg.BackupDir,
		informer: c.cfg.Wharf.ClusterBackupInformer("", c.cfg.ResyncPeriod),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "coe-backups"}),
	}
	enqueue := func(obj any) {
		if m := meta(obj); m != nil {
			b.queue.Add(m.GetNamespace() + "/" + m.GetName())
		}
	}
	b.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
	})
	return b
}

// run takes backups and schedules them until ctx is done.
func (b *backups) run(ctx context.Context) {
	defer b.queue.ShutDown()
	go b.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), b.informer.HasSynced, b.c.clusters.HasSynced) {
		return
	}
	go b.scheduleLoop(ctx)
	controllerutil.RunWorkers(ctx, b.log, b.queue, 2, b.sync,
		controllerutil.KeyAttr("backup"), controllerutil.FailureMessage("backup sync failed, retrying"))
}

// serviceBackupDir is <service state dir>/backups.
func serviceBackupDir(env wire.ServiceEnv) string {
	if env.DataDir == "" {
		return ""
	}
	return filepath.Join(env.DataDir, "backups")
}

// path is where a backup's file is kept.
func (b *backups) path(bk *wharfv1.ClusterBackup) string {
	return backupPath(b.dir, bk.Namespace, bk.Spec.Cluster, bk.Name)
}

func backupPath(dir, namespace, cluster, name string) string {
	return filepath.Join(dir, namespace, cluster, name+".db")
}

func (b *backups) sync(ctx context.Context, key string) error {
	obj, ok, err := b.informer.GetStore().GetByKey(key)
	if err != nil || !ok {
		return err
	}
	bk := obj.(*wharfv1.ClusterBackup)
	client := b.c.cfg.Wharf.ClusterBackups(bk.Namespace)
	if bk.DeletionTimestamp != nil {
		return b.remove(ctx, bk)
	}
	if !slices.Contains(bk.Finalizers, backupFinalizer) {
		bk = bk.DeepCopy()
		bk.Finalizers = append(bk.Finalizers, backupFinalizer)
		_, err := client.Update(ctx, bk, metav1.UpdateOptions{})
		return ignoreConflict(err) // the update comes back through the informer
	}
	switch bk.Status.Phase {
	case wharfv1.BackupCompleted, wharfv1.BackupFailed:
		return nil
	case "":
		bk = bk.DeepCopy()
		bk.Status.Phase, bk.Status.StartTime = wharfv1.BackupPending, new(metav1.NewTime(b.c.clock.Now()))
		_, err := client.UpdateStatus(ctx, bk, metav1.UpdateOptions{})
		return ignoreConflict(err)
	}
	// Pending: take it (again, after a restart of the service: the file
	// is written under a temporary name and renamed when whole).
	st, err := b.take(ctx, bk)
	bk = bk.DeepCopy()
	if err != nil {
		if errors.Is(err, errRetryBackup) && (bk.Status.StartTime == nil || b.c.clock.Since(bk.Status.StartTime.Time) < b.c.cfg.BackupRetry) {
			return err
		}
		b.log.Warn("backup failed", "backup", key, "err", err)
		bk.Status.Phase, bk.Status.Reason = wharfv1.BackupFailed, err.Error()
	} else {
		bk.Status.Phase, bk.Status.Reason = wharfv1.BackupCompleted, ""
		bk.Status.ClusterUID, bk.Status.SizeBytes, bk.Status.SHA256 = st.ClusterUID, st.SizeBytes, st.SHA256
		bk.Status.Revision, bk.Status.ObjectCount = st.Revision, st.ObjectCount
		b.log.Info("backup completed", "backup", key, "bytes", st.SizeBytes, "revision", st.Revision, "keys", st.ObjectCount)
	}
	bk.Status.CompletionTime = new(metav1.NewTime(b.c.clock.Now()))
	_, err = client.UpdateStatus(ctx, bk, metav1.UpdateOptions{})
	return err
}

// errRetryBackup marks a failure worth retrying (the cluster's API is
// not answering); others fail the backup at once.
var errRetryBackup = errors.New("cluster API unavailable")

// take fetches the snapshot of the backup's cluster into its file.
func (b *backups) take(ctx context.Context, bk *wharfv1.ClusterBackup) (wharfv1.ClusterBackupStatus, error) {
	var st wharfv1.ClusterBackupStatus
	if b.dir == "" {
		return st, errors.New("this service keeps no backups (no state dir)")
	}
	obj, ok, err := b.c.clusters.GetStore().GetByKey(bk.Namespace + "/" + bk.Spec.Cluster)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, fmt.Errorf("cluster %s not found", bk.Spec.Cluster)
	}
	cl := obj.(*wharfv1.Cluster)
	switch {
	case cl.DeletionTimestamp != nil:
		return st, fmt.Errorf("cluster %s is being deleted", cl.Name)
	case cl.Status.APIAddress == "":
		return st, fmt.Errorf("cluster %s has no API address yet (%s)", cl.Name, cl.Status.Status)
	}
	cr, err := b.c.ensureCredentials(ctx, cl)
	if err != nil {
		return st, fmt.Errorf("cluster %s credentials: %w", cl.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	info, err := fetchSnapshot(ctx, snapshotSource{address: cl.Status.APIAddress, token: cr.adminToken, caPEM: cr.caPEM}, b.path(bk))
	if err != nil {
		return st, err
	}
	st.ClusterUID = string(cl.UID)
	st.SizeBytes, st.SHA256, st.Revision, st.ObjectCount = info.Size, info.SHA256, info.Revision, int64(info.Keys)
	return st, nil
}

// remove deletes a backup's file, then its finalizer.
func (b *backups) remove(ctx context.Context, bk *wharfv1.ClusterBackup) error {
	if !slices.Contains(bk.Finalizers, backupFinalizer) {
		return nil
	}
	if b.dir != "" {
		p := b.path(bk)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backup %s/%s: %w", bk.Namespace, bk.Name, err)
		}
		// The cluster's dir goes with its last backup; not empty: kept.
		os.Remove(filepath.Dir(p))
	}
	bk = bk.DeepCopy()
	bk.Finalizers = slices.DeleteFunc(bk.Finalizers, func(f string) bool { return f == backupFinalizer })
	_, err := b.c.cfg.Wharf.ClusterBackups(bk.Namespace).Update(ctx, bk, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return ignoreConflict(err)
}

// ignoreConflict: a conflict means a newer version is on its way through
// the informer, which queues the key again.
func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
