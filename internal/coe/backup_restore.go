package coe

import (
	"context"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/snapshotfile"
)

// A cluster made from a backup (spec.fromBackup): before anything is made
// the service checks the backup's file against the checksum it recorded
// and as an etcd snapshot; its first master then gets the file and
// `wharf server --restore-from`, which restores it on its first start and
// drops the old cluster's nodes (controlplane/snapshot.go). Other masters
// join that one. The cluster has new hosts and credentials; the objects
// are the backup's.

// stepRestore names the check of the backup in a failed create's status.
const stepRestore = wharfv1.StepBackup

// fileRestoreSnapshot is where the snapshot goes on the first master,
// below its state dir.
const fileRestoreSnapshot = "restore/snapshot.db"

// restoreSource is a verified backup to restore into one master.
type restoreSource struct {
	host   string // the first master, the only one that restores
	data   []byte
	sha256 string
}

// restoreSource reads and verifies the backup a cluster is made from (nil
// for a cluster that is not). Its errors are failures of the create.
func (c *Controller) restoreSource(ctx context.Context, cl *wharfv1.Cluster) (*restoreSource, error) {
	if cl.Spec.FromBackup == "" {
		return nil, nil
	}
	bk, err := c.cfg.Wharf.ClusterBackups(cl.Namespace).Get(ctx, cl.Spec.FromBackup, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, failStep(stepRestore, nil, fmt.Errorf("backup %s not found", cl.Spec.FromBackup))
	case err != nil:
		return nil, err // the service's API: retried
	case bk.Status.Phase != wharfv1.BackupCompleted:
		return nil, failStep(stepRestore, nil, fmt.Errorf("backup %s is %s, not Completed", bk.Name, bk.Status.Phase))
	case c.cfg.BackupDir == "":
		return nil, failStep(stepRestore, nil, fmt.Errorf("this service keeps no backups"))
	}
	path := backupPath(c.cfg.BackupDir, bk.Namespace, bk.Spec.Cluster, bk.Name)
	if _, err := snapshotfile.Check(path, bk.Status.SHA256); err != nil {
		return nil, failStep(stepRestore, nil, fmt.Errorf("backup %s: %w", bk.Name, err))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, failStep(stepRestore, nil, fmt.Errorf("backup %s: %w", bk.Name, err))
	}
	return &restoreSource{data: data, sha256: bk.Status.SHA256}, nil
}

// forHost makes r restore into host only (r may be nil).
func (r *restoreSource) forHost(host string) *restoreSource {
	if r == nil {
		return nil
	}
	out := *r
	out.host = host
	return &out
}

// addTo gives a master's spec the snapshot and the flags to restore it,
// if it is the master r restores into.
func (r *restoreSource) addTo(spec *provider.HostSpec) {
	if r == nil || spec.Name != r.host {
		return
	}
	if spec.Files == nil {
		spec.Files = map[string][]byte{}
	}
	spec.Files[fileRestoreSnapshot] = r.data
	spec.Args = append(spec.Args, "--restore-from", "$(STATE_DIR)/"+fileRestoreSnapshot, "--restore-sha256", r.sha256)
}
