package wire

// Backups, as docs/service.md ("Backups") fixes them: a GET of SnapshotPath
// by a member of system:masters answers an etcd snapshot (etcd's own
// format: a bbolt database followed by its sha256), with its revision, the
// sha256 of the whole body and the number of live keys in headers.
const (
	SnapshotPath           = "/wharf/v1/snapshot"
	SnapshotRevisionHeader = "X-Wharf-Snapshot-Revision"
	SnapshotSHA256Header   = "X-Wharf-Snapshot-Sha256"
	SnapshotKeysHeader     = "X-Wharf-Snapshot-Keys"
)
