package storage_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"wharf.dev/wharf/internal/storage"
)

func startEtcd(t *testing.T, dir string) *storage.Embedded {
	t.Helper()
	e, err := storage.StartEmbedded(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), storage.EmbeddedConfig{Dir: dir, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// snapshotOf fills a fresh etcd with n keys, deletes one, and saves a snapshot.
func snapshotOf(t *testing.T, n int) (string, storage.SnapshotInfo) {
	t.Helper()
	ctx := context.Background()
	e := startEtcd(t, t.TempDir())
	for i := range n {
		if _, err := e.Client.Put(ctx, fmt.Sprintf("/registry/things/k%03d", i), fmt.Sprintf("value %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Client.Delete(ctx, "/registry/things/k000"); err != nil {
		t.Fatal(err)
	}
	rev, err := e.Client.Get(ctx, "none")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backups", "b1.db")
	info, err := storage.SaveSnapshot(ctx, e.Client, path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Revision != rev.Header.Revision {
		t.Errorf("snapshot revision %d, etcd at %d", info.Revision, rev.Header.Revision)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != info.Size {
		t.Fatalf("snapshot file: %v (size %d, want %d)", err, st.Size(), info.Size)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	return path, info
}

func TestSnapshotSaveVerifyRestore(t *testing.T) {
	path, info := snapshotOf(t, 50)
	got, err := storage.VerifySnapshot(path, info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != info.SHA256 || got.Revision != info.Revision {
		t.Errorf("verify: %+v, saved %+v", got, info)
	}
	if got.Keys != 49 {
		t.Errorf("verify counted %d live keys, want 49", got.Keys)
	}

	dir := filepath.Join(t.TempDir(), "etcd")
	if _, err := storage.RestoreSnapshot(slog.New(slog.NewTextHandler(io.Discard, nil)), path, dir, storage.RestoreConfig{SHA256: info.SHA256}); err != nil {
		t.Fatal(err)
	}
	e := startEtcd(t, dir)
	ctx := context.Background()
	resp, err := e.Client.Get(ctx, "/registry/things/", clientPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 49 || string(resp.Kvs[0].Key) != "/registry/things/k001" || string(resp.Kvs[0].Value) != "value 1" {
		t.Fatalf("restored %d keys, first %q", len(resp.Kvs), resp.Kvs[0].Key)
	}
	if resp.Header.Revision != info.Revision {
		t.Errorf("restored revision %d, snapshot's %d", resp.Header.Revision, info.Revision)
	}
	// The restored member is one new member, and it takes writes.
	members, err := e.Client.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 1 || members.Members[0].Name != "wharf" {
		t.Errorf("members after restore: %v", members.Members)
	}
	put, err := e.Client.Put(ctx, "/registry/things/new", "x")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision != info.Revision+1 {
		t.Errorf("first write after restore at revision %d, want %d", put.Header.Revision, info.Revision+1)
	}
}

func TestSnapshotBadFilesRefused(t *testing.T) {
	path, info := snapshotOf(t, 20)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int) []byte {
		b := append([]byte(nil), good...)
		b[off] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		sha     string
		wantErr string
	}{
		{"truncated", good[:len(good)/2], "", "truncated"},
		{"truncated at a sector", good[:len(good)-512], "", "truncated"},
		{"empty", nil, "", "truncated"},
		{"corrupted data", flip(len(good) / 3), "", "integrity hash does not match"},
		{"corrupted trailer", flip(len(good) - 1), "", "integrity hash does not match"},
		{"other file's checksum", good, strings.Repeat("ab", 32), "sha256 is"},
		{"not a database", append(make([]byte, 4096), sha256Of(make([]byte, 4096))...), "", "open database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.db")
			if err := os.WriteFile(bad, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := storage.VerifySnapshot(bad, tc.sha); !errors.Is(err, storage.ErrBadSnapshot) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("verify: %v, want ErrBadSnapshot with %q", err, tc.wantErr)
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "etcd")
			_, err := storage.RestoreSnapshot(slog.New(slog.NewTextHandler(io.Discard, nil)), bad, dir, storage.RestoreConfig{SHA256: tc.sha})
			if !errors.Is(err, storage.ErrBadSnapshot) {
				t.Fatalf("restore: %v, want ErrBadSnapshot", err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("restore left %v behind", entries)
			}
		})
	}
	if _, err := storage.VerifySnapshot(path, info.SHA256); err != nil {
		t.Errorf("the good file: %v", err)
	}
}

func TestRestoreRefusesNonEmptyDir(t *testing.T) {
	path, _ := snapshotOf(t, 3)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.RestoreSnapshot(slog.New(slog.NewTextHandler(io.Discard, nil)), path, dir, storage.RestoreConfig{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty dir: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(b) != "x" {
		t.Errorf("existing file touched: %q, %v", b, err)
	}
}

func clientPrefix() clientv3.OpOption { return clientv3.WithPrefix() }

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func TestCopySnapshotOfStoppedMember(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := storage.StartEmbedded(ctx, slog.New(slog.DiscardHandler), storage.EmbeddedConfig{Dir: dir, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := e.Client.Put(ctx, fmt.Sprintf("/registry/k%d", i), "v"); err != nil {
			e.Close()
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "member", "snap", "db")
	if _, err := storage.CopySnapshot(db, io.Discard); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("copy of a running member's database: %v", err)
	}
	e.Close()
	out := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := storage.CopySnapshot(db, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := storage.VerifySnapshot(out, info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got.Keys != 10 || got.Revision != 11 {
		t.Errorf("copy holds %d keys at revision %d, want 10 at 11", got.Keys, got.Revision)
	}
	restored := filepath.Join(t.TempDir(), "etcd")
	if _, err := storage.RestoreSnapshot(slog.New(slog.DiscardHandler), out, restored, storage.RestoreConfig{}); err != nil {
		t.Fatal(err)
	}
	e2 := startEtcd(t, restored)
	if resp, err := e2.Client.Get(ctx, "/registry/k9"); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("restored copy: %v %v", resp, err)
	}
}

// FuzzVerifySnapshot: whatever a file holds, verifying it returns (an
// error for anything but a snapshot) and never panics. The trailer is
// made valid so that the fuzzer reaches the database checks.
func FuzzVerifySnapshot(f *testing.F) {
	e, err := storage.StartEmbedded(context.Background(), slog.New(slog.DiscardHandler), storage.EmbeddedConfig{Dir: f.TempDir(), UnsafeNoFsync: true})
	if err != nil {
		f.Fatal(err)
	}
	e.Client.Put(context.Background(), "/registry/k", "v")
	path := filepath.Join(f.TempDir(), "s.db")
	if _, err := storage.SaveSnapshot(context.Background(), e.Client, path); err != nil {
		f.Fatal(err)
	}
	e.Close()
	good, _ := os.ReadFile(path)
	f.Add(good[:len(good)-32])
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, db []byte) {
		file := filepath.Join(t.TempDir(), "f.db")
		os.WriteFile(file, append(db, sha256Of(db)...), 0o600)
		storage.VerifySnapshot(file, "")
	})
}

// TestRestoreAsFirstOfSeveralMembers: a snapshot restored for a named
// member with its peer URL starts as that member, and a second member
// joins it with the data (the first master of a multi-master cluster).
func TestRestoreAsFirstOfSeveralMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	path, info := snapshotOf(t, 5)
	peerA := freeURL(t)
	dirA := filepath.Join(t.TempDir(), "etcd")
	if _, err := storage.RestoreSnapshot(log, path, dirA, storage.RestoreConfig{Name: "a", PeerURL: peerA, SHA256: info.SHA256}); err != nil {
		t.Fatal(err)
	}
	a, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{Dir: dirA, Name: "a", ClientURL: freeURL(t), PeerURL: peerA, InitialCluster: "a=" + peerA, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	peerB := freeURL(t)
	resp, err := storage.AddLearner(ctx, a.Client, "b", peerB)
	if err != nil {
		t.Fatal(err)
	}
	b, err := storage.StartEmbedded(ctx, log, storage.EmbeddedConfig{Dir: t.TempDir(), Name: "b", ClientURL: freeURL(t), PeerURL: peerB,
		InitialCluster: resp.InitialCluster, Join: true, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	promote(ctx, t, a, "b")
	got, err := b.Client.Get(ctx, "/registry/things/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 4 {
		t.Fatalf("the joined member holds %v (%v), want the snapshot's 4 keys", got, err)
	}
	if got.Header.Revision < info.Revision {
		t.Errorf("revision %d after the join, snapshot's %d", got.Header.Revision, info.Revision)
	}
}
