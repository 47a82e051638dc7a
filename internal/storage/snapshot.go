package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"google.golang.org/protobuf/proto"

	"wharf.dev/wharf/internal/snapshotfile"
)

// ErrBadSnapshot marks a snapshot file that is truncated, corrupted or not
// a snapshot at all (package snapshotfile).
var ErrBadSnapshot = snapshotfile.ErrBad

// SnapshotInfo describes a snapshot file.
type SnapshotInfo = snapshotfile.Info

// WriteSnapshot streams a snapshot of the etcd behind c to w and returns
// its size and sha256, and its revision when etcd's stream says it (an
// in-process client's does not: VerifySnapshot reads it from the file).
func WriteSnapshot(ctx context.Context, c *clientv3.Client, w io.Writer) (SnapshotInfo, error) {
	resp, err := c.SnapshotWithVersion(ctx)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("open etcd snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Snapshot)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("read etcd snapshot after %d bytes: %w", n, err)
	}
	info := SnapshotInfo{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	if resp.Header != nil {
		info.Revision = resp.Header.GetRevision()
	}
	return info, nil
}

// SaveSnapshot writes a snapshot to path atomically: into a temporary file
// beside it, synced, checked, then renamed. A failure leaves no file at path.
func SaveSnapshot(ctx context.Context, c *clientv3.Client, path string) (SnapshotInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	info, err := WriteSnapshot(ctx, c, f)
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("sync snapshot %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("close snapshot %s: %w", tmp, err)
	}
	// A stream cut short by etcd would otherwise be kept as a backup.
	if info, err = VerifySnapshot(tmp, info.SHA256); err != nil {
		return SnapshotInfo{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	ok = true
	return info, syncDir(dir)
}

// VerifySnapshot checks a snapshot file: its sha256 against want (when not
// empty), etcd's integrity hash in its trailer, and the bbolt database's
// own consistency; it reports the revision and the number of live keys.
func VerifySnapshot(path, want string) (SnapshotInfo, error) {
	info, err := snapshotfile.Check(path, want)
	if err != nil {
		return info, err
	}
	if info.Revision, info.Keys, err = inspectDB(path); err != nil {
		return info, fmt.Errorf("snapshot %s: %w: %w", path, ErrBadSnapshot, err)
	}
	return info, nil
}

// inspectDB opens the database read-only, runs bbolt's consistency check
// and counts the revision and live keys as etcdutl's status does.
func inspectDB(path string) (rev int64, keys int, err error) {
	// bbolt panics on some malformed pages: a damaged file is an error here.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("database: %v", r)
		}
	}()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return 0, 0, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, e.Error())
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("database check: %s", strings.Join(problems, "; "))
		}
		kb := tx.Bucket(schema.Key.Name())
		if kb == nil {
			return errors.New("no key bucket: not an etcd database")
		}
		live := map[string]bool{}
		err := kb.ForEach(func(k, v []byte) error {
			if len(k) != 17 && len(k) != 18 {
				return fmt.Errorf("key bucket: revision key of %d bytes", len(k))
			}
			rev = max(rev, mvcc.BytesToRev(k).Main)
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("revision %x: %w", k, err)
			}
			// Revisions come in order: the last one of a key says whether it lives.
			live[string(kv.GetKey())] = !mvcc.IsTombstone(k)
			return nil
		})
		if err != nil {
			return err
		}
		for _, l := range live {
			if l {
				keys++
			}
		}
		if meta := tx.Bucket(schema.Meta.Name()); meta != nil {
			// History compacted away leaves the compacted revision as the floor.
			if b := meta.Get(schema.FinishedCompactKeyName); len(b) == 17 {
				rev = max(rev, mvcc.BytesToRev(b).Main)
			}
		}
		return nil
	})
	return rev, keys, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// CopySnapshot writes a snapshot of a stopped member's database (dbPath:
// <data dir>/member/snap/db) to w, as etcd's Snapshot would: a consistent
// copy of the database followed by its sha256. A member that runs holds
// the database's lock; then it fails after a second.
func CopySnapshot(dbPath string, w io.Writer) (SnapshotInfo, error) {
	db, err := bolt.Open(dbPath, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("open %s (is its etcd still running?): %w", dbPath, err)
	}
	defer db.Close()
	whole, inner := sha256.New(), sha256.New()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(io.MultiWriter(w, whole, inner))
		return err
	})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("copy %s: %w", dbPath, err)
	}
	trailer := inner.Sum(nil)
	if _, err := w.Write(trailer); err != nil {
		return SnapshotInfo{}, fmt.Errorf("copy %s: %w", dbPath, err)
	}
	whole.Write(trailer)
	return SnapshotInfo{Size: n + int64(len(trailer)), SHA256: hex.EncodeToString(whole.Sum(nil))}, nil
}
