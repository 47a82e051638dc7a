package coe

import (
	"cmp"
	"context"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/resources"
)

// Scheduled backups: a cluster with the label backup_interval=<duration>
// gets a backup <cluster>-auto-<UTC time> every interval, and its
// scheduled backups beyond backup_retention (default 7), oldest first,
// are deleted. They carry LabelScheduledBackup=<cluster uid>, so a later
// cluster of the same name does not prune an earlier one's backups.

// backupScheduleTick is how often schedules are looked at.
const backupScheduleTick = 10 * time.Second

// backupSchedule is a cluster's schedule from its labels.
type backupSchedule struct {
	interval  time.Duration
	retention int
}

// parseBackupSchedule reads the labels (resources.BackupSchedule); ok is
// false without a schedule.
func parseBackupSchedule(labels map[string]string) (backupSchedule, bool, error) {
	iv, r, ok, err := resources.BackupSchedule(labels)
	return backupSchedule{interval: iv, retention: r}, ok, err
}

// planSchedule decides, for one cluster, the backup to take now ("" none)
// and the scheduled backups to delete. scheduled are the cluster's
// scheduled backups, in any order.
func planSchedule(cl *wharfv1.Cluster, s backupSchedule, scheduled []*wharfv1.ClusterBackup, now time.Time) (take string, drop []string) {
	slices.SortFunc(scheduled, func(a, b *wharfv1.ClusterBackup) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var live []*wharfv1.ClusterBackup
	for _, b := range scheduled {
		if b.DeletionTimestamp == nil {
			live = append(live, b)
		}
	}
	if len(live) == 0 || now.Sub(live[len(live)-1].CreationTimestamp.Time) >= s.interval {
		take = cl.Name + "-auto-" + now.UTC().Format("20060102150405")
		if len(live) > 0 && live[len(live)-1].Name == take {
			take = "" // taken this second already
		}
	}
	keep := s.retention
	if take != "" {
		keep-- // the new one counts
	}
	for i := 0; i < len(live)-max(keep, 0); i++ {
		drop = append(drop, live[i].Name)
	}
	return take, drop
}

// backupable: a cluster whose API serves and which is not going away.
func backupable(cl *wharfv1.Cluster) bool {
	if cl.DeletionTimestamp != nil || cl.Status.APIAddress == "" {
		return false
	}
	switch cl.Status.Status {
	case wharfv1.StatusCreateComplete, wharfv1.StatusUpdateInProgress, wharfv1.StatusUpdateComplete, wharfv1.StatusUpdateFailed:
		return true
	}
	return false
}

func (b *backups) scheduleLoop(ctx context.Context) {
	t := b.c.clock.NewTicker(backupScheduleTick)
	defer t.Stop()
	warned := map[string]string{}
	for {
		b.schedule(ctx, warned)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// schedule applies every cluster's schedule once; warned holds the label
// errors already logged, per cluster.
func (b *backups) schedule(ctx context.Context, warned map[string]string) {
	byUID := map[string][]*wharfv1.ClusterBackup{}
	for _, obj := range b.informer.GetStore().List() {
		bk := obj.(*wharfv1.ClusterBackup)
		if uid := bk.Labels[wharfv1.LabelScheduledBackup]; uid != "" {
			byUID[uid] = append(byUID[uid], bk)
		}
	}
	now := b.c.clock.Now()
	for _, obj := range b.c.clusters.GetStore().List() {
		cl := obj.(*wharfv1.Cluster)
		s, ok, err := parseBackupSchedule(clusterLabels(cl))
		key := cl.Namespace + "/" + cl.Name
		if err != nil && warned[key] != err.Error() {
			b.log.Warn("no scheduled backups", "cluster", key, "err", err)
			warned[key] = err.Error()
		}
		if !ok || !backupable(cl) {
			continue
		}
		take, drop := planSchedule(cl, s, byUID[string(cl.UID)], now)
		client := b.c.cfg.Wharf.ClusterBackups(cl.Namespace)
		if take != "" {
			_, err := client.Create(ctx, &wharfv1.ClusterBackup{
				ObjectMeta: metav1.ObjectMeta{Name: take, Namespace: cl.Namespace, Labels: map[string]string{wharfv1.LabelScheduledBackup: string(cl.UID)}},
				Spec:       wharfv1.ClusterBackupSpec{Cluster: cl.Name},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				b.log.Warn("scheduled backup not created", "cluster", key, "backup", take, "err", err)
				continue
			}
			b.log.Info("scheduled backup", "cluster", key, "backup", take)
		}
		for _, name := range drop {
			if err := client.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				b.log.Warn("old scheduled backup not deleted", "cluster", key, "backup", name, "err", err)
			}
		}
	}
}
