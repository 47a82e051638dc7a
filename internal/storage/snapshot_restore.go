package storage

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/etcdserver/cindex"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// RestoreConfig says which member a restored data dir belongs to.
type RestoreConfig struct {
	// Name and PeerURL are the member's; empty: those StartEmbedded uses for
	// a single member ("wharf", loopback with a free port).
	Name    string
	PeerURL string
	// SHA256, when set, is the file's expected checksum.
	SHA256 string
}

// initialClusterToken is embed's default, which StartEmbedded keeps.
const initialClusterToken = "etcd-cluster"

// RestoreSnapshot makes dir (absent or empty) the data dir of a one-member
// etcd cluster holding the snapshot's keys at the snapshot's revision, as
// `etcdutl snapshot restore` does: the database keeps its keys and loses
// its old membership; a new WAL holds the new member. The work happens in
// a temporary dir beside dir, renamed into place at the end, so a failure
// leaves dir as it was.
func RestoreSnapshot(logger *slog.Logger, path, dir string, c RestoreConfig) (SnapshotInfo, error) {
	if c.Name == "" {
		c.Name = "wharf"
	}
	if c.PeerURL == "" {
		c.PeerURL = "http://127.0.0.1:0"
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return SnapshotInfo{}, fmt.Errorf("restore into %s: not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return SnapshotInfo{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	info, err := VerifySnapshot(path, c.SHA256)
	if err != nil {
		return info, err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	lg := zap.NewNop()
	if err := restoreInto(lg, path, tmp, c); err != nil {
		return info, fmt.Errorf("restore %s: %w", path, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	ok = true
	logger.Info("etcd snapshot restored", "snapshot", path, "dir", dir, "revision", info.Revision, "keys", info.Keys)
	return info, syncDir(parent)
}

func restoreInto(lg *zap.Logger, path, dataDir string, c RestoreConfig) error {
	urls, err := types.NewURLsMap(c.Name + "=" + c.PeerURL)
	if err != nil {
		return fmt.Errorf("member %s=%s: %w", c.Name, c.PeerURL, err)
	}
	cl, err := membership.NewClusterFromURLsMap(lg, initialClusterToken, urls)
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	snapDir := filepath.Join(dataDir, "member", "snap")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(snapDir, "db")
	if err := copyDB(path, dbPath); err != nil {
		return err
	}

	be := backend.NewDefaultBackend(lg, dbPath)
	defer func() {
		if be != nil {
			be.Close()
		}
	}()
	if err := schema.NewMembershipBackend(lg, be).TrimMembershipFromBackend(); err != nil {
		return fmt.Errorf("drop old members: %w", err)
	}
	cl.SetBackend(schema.NewMembershipBackend(lg, be))
	for _, m := range cl.Members() {
		cl.AddMember(m, true)
	}
	commit, term, err := writeWAL(lg, filepath.Join(dataDir, "member", "wal"), cl, c.Name)
	if err != nil {
		return err
	}
	// The database must say it holds everything up to the WAL's commit,
	// or the member would replay the membership entries onto it again.
	cindex.UpdateConsistentIndexForce(be.BatchTx(), commit, term)
	be.ForceCommit()
	err = be.Close()
	be = nil
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// copyDB copies the snapshot's database, without etcd's hash trailer, and syncs it.
func copyDB(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, st.Size()-sha256.Size)); err != nil {
		out.Close()
		return fmt.Errorf("copy database: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("copy database: %w", err)
	}
	return out.Close()
}

// writeWAL starts a WAL whose first entries add the members, committed at
// term 1, followed by a raft snapshot at that index (etcdutl's layout).
func writeWAL(lg *zap.Logger, walDir string, cl *membership.RaftCluster, name string) (commit, term uint64, err error) {
	m := cl.MemberByName(name)
	if m == nil {
		return 0, 0, fmt.Errorf("member %q not in the new cluster", name)
	}
	meta, err := proto.Marshal(&etcdserverpb.Metadata{NodeID: new(uint64(m.ID)), ClusterID: new(uint64(cl.ID()))})
	if err != nil {
		return 0, 0, err
	}
	w, err := wal.Create(lg, walDir, meta)
	if err != nil {
		return 0, 0, fmt.Errorf("create wal: %w", err)
	}
	defer w.Close()
	ids := cl.MemberIDs()
	ents := make([]*raftpb.Entry, len(ids))
	voters := make([]uint64, len(ids))
	for i, id := range ids {
		ctx, err := json.Marshal(cl.Member(id))
		if err != nil {
			return 0, 0, err
		}
		cc, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(id)), Context: ctx})
		if err != nil {
			return 0, 0, err
		}
		ents[i] = &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: new(uint64(1)), Index: new(uint64(i + 1)), Data: cc}
		voters[i] = uint64(id)
	}
	commit, term = uint64(len(ents)), 1
	if err := w.Save(&raftpb.HardState{Term: new(term), Vote: new(voters[0]), Commit: new(commit)}, ents); err != nil {
		return 0, 0, fmt.Errorf("write wal: %w", err)
	}
	snap := &walpb.Snapshot{Index: new(commit), Term: new(term), ConfState: &raftpb.ConfState{Voters: voters}}
	if err := w.SaveSnapshot(snap); err != nil {
		return 0, 0, fmt.Errorf("write wal: %w", err)
	}
	return commit, term, nil
}
