package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// backupListColumns are `wharf cluster backup list`'s columns.
var backupListColumns = []string{"name", "cluster", "phase", "size", "revision", "created_at"}

// newClusterBackupCmd is `wharf cluster backup`.
func newClusterBackupCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back clusters up: etcd snapshots kept by the service",
		Long: `A backup is an etcd snapshot of a cluster, taken through the cluster's API
and kept in the service's state dir with its sha256. Backups outlive their
cluster; 'wharf cluster create NEW --from-backup CLUSTER/BACKUP' makes a new
cluster (new hosts, new credentials) holding the backup's objects.

Scheduled backups: the cluster labels backup_interval=<duration> (at least
1m) and backup_retention=<n> (default 7) take <cluster>-auto-<time> every
interval and delete the oldest scheduled ones beyond n.`,
		Example: `  wharf cluster backup create demo --wait
  wharf cluster backup list demo
  wharf cluster backup show demo/demo-20261208
  wharf cluster backup delete demo-20261208
  wharf cluster update demo replace backup_interval=1h backup_retention=24`,
	}
	cmd.AddCommand(newBackupCreateCmd(sf, stdio), newBackupListCmd(sf, stdio), newBackupShowCmd(sf, stdio), newBackupDeleteCmd(sf, stdio))
	return cmd
}

func newBackupCreateCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	var w waitFlags
	var name string
	cmd := &cobra.Command{
		Use:   "create CLUSTER",
		Short: "Back a cluster up",
		Args:  exactArgs(1, "CLUSTER"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			if name == "" {
				name = args[0] + "-" + time.Now().UTC().Format("20060102150405")
			}
			_, err := s.wharf.ClusterBackups(s.project).Create(ctx, &wharfv1.ClusterBackup{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.project},
				Spec:       wharfv1.ClusterBackupSpec{Cluster: args[0]},
			}, metav1.CreateOptions{})
			if err != nil {
				return s.explain(err, "cluster backup", name, map[string]string{"spec.cluster": "CLUSTER", "metadata.name": "--name"})
			}
			if !w.wait {
				fmt.Fprintf(stdio.Out, "Request to back up cluster %s as %s has been accepted.\n", args[0], name)
				return nil
			}
			start := time.Now()
			b, err := s.waitBackup(ctx, name, w.timeoutOr(defaultWaitTimeout))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Err, "Backup %s of cluster %s completed in %s\n", name, args[0], since(start))
			return out.printOne(stdio.Out, backupRecord(b))
		}),
	}
	out.register(cmd)
	w.register(cmd, "until the backup is Completed (or Failed)")
	cmd.Flags().StringVar(&name, "name", "", "the backup's name (default <cluster>-<UTC time>)")
	return cmd
}

func newBackupListCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "list [CLUSTER]",
		Short: "List the project's backups (of one cluster)",
		Args:  cobra.MaximumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			opts := metav1.ListOptions{}
			if len(args) == 1 {
				opts.FieldSelector = "spec.cluster=" + args[0]
			}
			list, err := s.wharf.ClusterBackups(s.project).List(ctx, opts)
			if err != nil {
				return s.explain(err, "cluster backup", "", nil)
			}
			items := list.Items
			slices.SortFunc(items, func(a, b wharfv1.ClusterBackup) int {
				return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
			})
			rs := make([]record, len(items))
			for i := range items {
				rs[i] = backupRecord(&items[i])
			}
			return out.printList(stdio.Out, rs, backupListColumns)
		}),
	}
	out.register(cmd)
	return cmd
}

func newBackupShowCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	var out outputFlags
	cmd := &cobra.Command{
		Use:   "show [CLUSTER/]NAME",
		Short: "Show a backup's fields (phase, size, sha256, revision, ...)",
		Args:  exactArgs(1, "[CLUSTER/]NAME"),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			b, err := s.getBackup(ctx, args[0])
			if err != nil {
				return err
			}
			return out.printOne(stdio.Out, backupRecord(b))
		}),
	}
	out.register(cmd)
	return cmd
}

func newBackupDeleteCmd(sf *serviceFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete [CLUSTER/]NAME...",
		Short: "Delete backups and their files",
		Args:  cobra.MinimumNArgs(1),
		RunE: sf.withService(func(ctx context.Context, s *service, args []string) error {
			var errs []error
			for _, ref := range args {
				b, err := s.getBackup(ctx, ref)
				if err == nil {
					err = s.wharf.ClusterBackups(s.project).Delete(ctx, b.Name, metav1.DeleteOptions{})
					if err != nil {
						err = s.explain(err, "cluster backup", b.Name, nil)
					}
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(stdio.Out, "Request to delete backup %s has been accepted.\n", b.Name)
			}
			return errors.Join(errs...)
		}),
	}
	return cmd
}

// splitBackupRef reads CLUSTER/NAME or NAME.
func splitBackupRef(ref string) (cluster, name string) {
	if c, n, ok := strings.Cut(ref, "/"); ok {
		return c, n
	}
	return "", ref
}

// getBackup reads a backup by [CLUSTER/]NAME; with a cluster, the backup
// must be that cluster's.
func (s *service) getBackup(ctx context.Context, ref string) (*wharfv1.ClusterBackup, error) {
	cluster, name := splitBackupRef(ref)
	b, err := s.wharf.ClusterBackups(s.project).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, s.explain(err, "cluster backup", name, nil)
	}
	if cluster != "" && b.Spec.Cluster != cluster {
		return nil, fmt.Errorf("backup %s is of cluster %s, not %s: see `wharf cluster backup list %s`", name, b.Spec.Cluster, cluster, cluster)
	}
	return b, nil
}

// backupToRestore checks a --from-backup reference ("" none) and returns
// the backup's name: it must exist and be Completed.
func (s *service) backupToRestore(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	b, err := s.getBackup(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("--from-backup: %w", err)
	}
	if b.Status.Phase != wharfv1.BackupCompleted {
		reason := ""
		if b.Status.Reason != "" {
			reason = ": " + b.Status.Reason
		}
		return "", fmt.Errorf("--from-backup: backup %s is %s, not Completed%s", b.Name, cmp.Or(b.Status.Phase, "Pending"), reason)
	}
	return b.Name, nil
}

// restoreCheckTimeout bounds checkRestore's wait for the service.
var restoreCheckTimeout = 15 * time.Second

// checkRestore waits until the service has checked the backup a new
// cluster is made from (its first step recorded, or the backup step
// failed). The service checks the file before it makes anything: a
// refused backup leaves only the Cluster object, which is deleted, and
// the error says why. A service that does not answer in time (no
// controller) leaves the cluster to its later status.
func (s *service) checkRestore(ctx context.Context, name, backup string) error {
	var refused string
	err := waitObject(ctx, s.wharf.Clusters(s.project), &wharfv1.Cluster{}, s.project, name, restoreCheckTimeout, false, func(o runtime.Object) (bool, error) {
		c := o.(*wharfv1.Cluster)
		if c.Status.Status == wharfv1.StatusCreateFailed && c.Status.Faults[wharfv1.StepBackup] != "" {
			refused = c.Status.Faults[wharfv1.StepBackup]
			return true, nil
		}
		return len(c.Status.Steps) > 0 || c.Status.Status == wharfv1.StatusCreateComplete || c.Status.Status == wharfv1.StatusCreateFailed, nil
	})
	switch {
	case errors.Is(err, errWaitTimeout):
		return nil
	case err != nil:
		return err
	case refused == "":
		return nil
	}
	if err := s.wharf.Clusters(s.project).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("cluster %s not created from backup %s: %s (and deleting the failed cluster: %w)", name, backup, refused, s.explain(err, "cluster", name, nil))
	}
	return fmt.Errorf("cluster %s not created from backup %s: %s", name, backup, refused)
}

// waitBackup follows a backup until it is Completed; Failed is an error.
func (s *service) waitBackup(ctx context.Context, name string, timeout time.Duration) (*wharfv1.ClusterBackup, error) {
	var last *wharfv1.ClusterBackup
	err := waitObject(ctx, s.wharf.ClusterBackups(s.project), &wharfv1.ClusterBackup{}, s.project, name, timeout, false, func(o runtime.Object) (bool, error) {
		last = o.(*wharfv1.ClusterBackup)
		switch last.Status.Phase {
		case wharfv1.BackupCompleted:
			return true, nil
		case wharfv1.BackupFailed:
			return false, fmt.Errorf("backup %s of cluster %s failed: %s", name, last.Spec.Cluster, last.Status.Reason)
		}
		return false, nil
	})
	phase := ""
	if last != nil {
		phase = last.Status.Phase
	}
	return last, waitError(ctx, err, "backup", name, timeout, phase)
}

// backupRecord is a backup as the CLI shows it.
func backupRecord(b *wharfv1.ClusterBackup) record {
	st := &b.Status
	size := ""
	if st.SizeBytes > 0 {
		size = humanBytes(st.SizeBytes)
	}
	return record{
		{"uuid", string(b.UID)},
		{"name", b.Name},
		{"project_id", b.Namespace},
		{"cluster", b.Spec.Cluster},
		{"cluster_uuid", st.ClusterUID},
		{"phase", st.Phase},
		{"reason", st.Reason},
		{"size", size},
		{"size_bytes", st.SizeBytes},
		{"sha256", st.SHA256},
		{"revision", st.Revision},
		{"object_count", st.ObjectCount},
		{"scheduled", b.Labels[wharfv1.LabelScheduledBackup] != ""},
		{"created_at", timestamp(&b.CreationTimestamp)},
		{"started_at", timestamp(st.StartTime)},
		{"completed_at", timestamp(st.CompletionTime)},
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
