package controlplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/wire"
)

// Backups (docs/service.md, "Backups"): an administrator fetches an etcd
// snapshot over HTTPS at wire.SnapshotPath; a new server's first start can
// restore one (Options.RestoreFrom) before anything else is made.

// restoredMarker sits in the data dir from a restore until the restored
// cluster's stale nodes are gone, so a crash in between repeats the cleanup.
const restoredMarker = "restored-from-snapshot"

// snapshotRoutes serve etcd snapshots to system:masters.
func (s *Server) snapshotRoutes() []apiserver.Route {
	return []apiserver.Route{{Pattern: wire.SnapshotPath, Handler: http.HandlerFunc(s.serveSnapshot)}}
}

// serveSnapshot saves a snapshot to a temporary file first, so the reply
// carries its size, revision and checksum in headers before the body.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeStatus(w, apierrors.NewMethodNotSupported(corev1.Resource("snapshot"), r.Method))
		return
	}
	if u, ok := apiserver.UserFrom(r.Context()); !ok || !slices.Contains(u.Groups, "system:masters") {
		name := ""
		if u != nil {
			name = u.Name
		}
		writeStatus(w, apierrors.NewForbidden(corev1.Resource("snapshot"), "", fmt.Errorf("user %q may not read etcd snapshots: only system:masters may", name)))
		return
	}
	dir, err := os.MkdirTemp(s.opts.DataDir, ".snapshot-*")
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "snapshot.db")
	info, err := storage.SaveSnapshot(r.Context(), s.client, path)
	if err != nil {
		s.log.Error("snapshot failed", "err", err)
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(wire.SnapshotRevisionHeader, strconv.FormatInt(info.Revision, 10))
	h.Set(wire.SnapshotSHA256Header, info.SHA256)
	h.Set(wire.SnapshotKeysHeader, strconv.Itoa(info.Keys))
	s.log.Info("serving etcd snapshot", "revision", info.Revision, "bytes", info.Size, "keys", info.Keys)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// restoreAtStart restores Options.RestoreFrom into <data-dir>/etcd when
// the data dir has no etcd data yet; with data, the snapshot was restored
// by an earlier start and is ignored. It runs before anything is written
// to the data dir, so a bad snapshot leaves it as it was.
func (o Options) restoreAtStart() error {
	if o.RestoreFrom == "" {
		return nil
	}
	if len(o.EtcdServers) > 0 {
		return errors.New("--restore-from restores the embedded etcd: not with --etcd-servers (restore an external etcd with etcdutl)")
	}
	dir := filepath.Join(o.DataDir, "etcd")
	if _, err := os.Stat(filepath.Join(dir, "member")); err == nil {
		o.Logger.Info("etcd data present: snapshot already restored, not again", "snapshot", o.RestoreFrom, "dir", dir)
		return nil
	}
	rc := storage.RestoreConfig{SHA256: o.RestoreSHA256}
	if o.EtcdPeerAddress != "" {
		// The first master of several (members.go): its member, named and
		// reached as openMember makes it; the others join it.
		if len(o.Join) > 0 {
			return errors.New("--restore-from restores the first master's etcd: a master that joins (--join) gets the data from the others")
		}
		host, _, err := net.SplitHostPort(o.EtcdPeerAddress)
		if err != nil {
			return fmt.Errorf("etcd peer address %q: %w", o.EtcdPeerAddress, err)
		}
		rc.Name, rc.PeerURL = cmp.Or(o.EtcdName, host), "https://"+o.EtcdPeerAddress
	}
	if _, err := storage.RestoreSnapshot(o.Logger, o.RestoreFrom, dir, rc); err != nil {
		return fmt.Errorf("restore from %s: %w", o.RestoreFrom, err)
	}
	if err := os.WriteFile(filepath.Join(o.DataDir, restoredMarker), []byte(o.RestoreFrom+"\n"), 0o600); err != nil {
		return fmt.Errorf("restore from %s: %w", o.RestoreFrom, err)
	}
	return nil
}

// staleNodeKeys hold what a restored cluster's old hosts left: their Node
// objects, their leases and their join tokens. The new cluster's agents
// register anew; without the old Nodes, podgc deletes the pods bound to
// them and their controllers recreate them on the new nodes.
var staleNodeKeys = []string{
	storage.Prefix + "core/nodes/",
	storage.Prefix + "coordination.k8s.io/leases/kube-node-lease/",
	storage.Prefix + "core/secrets/" + wire.NodeTokenNamespace + "/" + wire.NodeTokenSecretName(""),
}

// finishRestore drops the restored cluster's stale nodes straight in etcd,
// before the storage cache and the controllers start.
func (s *Server) finishRestore(ctx context.Context) error {
	marker := filepath.Join(s.opts.DataDir, restoredMarker)
	if _, err := os.Stat(marker); err != nil {
		return nil
	}
	n, err := dropStaleNodes(ctx, s.client)
	if err != nil {
		return fmt.Errorf("restored cluster: %w", err)
	}
	s.log.Info("restored cluster: stale nodes removed", "keys", n)
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("restored cluster: %w", err)
	}
	return nil
}

func dropStaleNodes(ctx context.Context, c *clientv3.Client) (int64, error) {
	var n int64
	for _, p := range staleNodeKeys {
		resp, err := c.Delete(ctx, p, clientv3.WithPrefix())
		if err != nil {
			return n, fmt.Errorf("delete %s*: %w", p, err)
		}
		n += resp.Deleted
	}
	return n, nil
}
