package clusterservice

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/wire"
)

// A service backup (`wharf service backup`) is one tar.gz of the service's
// own state: an etcd snapshot of its server (clusters, templates, node
// groups, cluster backups' objects, clusters' credentials), the rest of
// the server's data dir (pki, tokens, registry), service.json,
// network.json, the ssh provider's records, the local hosts' records
// (hosts/*/host.json) and the clusters' backup files. MANIFEST.json, the
// last entry, holds every entry's sha256; the archive's own sha256 goes
// beside it in FILE.sha256 (sha256sum's format).

const (
	manifestName   = "MANIFEST.json"
	etcdEntry      = "etcd.db"
	archiveFormat  = "wharf-service-backup/1"
	maxArchiveFile = 64 << 30
)

// backupsDir keeps the clusters' backups (coe.Config.BackupDir).
func (o Options) backupsDir() string { return filepath.Join(o.StateDir, "backups") }

// Manifest describes a service backup.
type Manifest struct {
	Format   string    `json:"format"`
	Created  time.Time `json:"created"`
	StateDir string    `json:"stateDir"`
	// Online: the snapshot was taken through the running service's API.
	Online       bool              `json:"online"`
	EtcdRevision int64             `json:"etcdRevision"`
	Files        map[string]string `json:"files"` // entry name → sha256
}

// BackupInfo is what Backup wrote.
type BackupInfo struct {
	Manifest
	SHA256 string
	Size   int64
}

// Backup archives the service's state into file (atomically: a temporary
// file renamed when whole) and writes file.sha256. The etcd snapshot comes
// through the service's API when it runs, else from its stopped database.
func Backup(ctx context.Context, o Options, file string) (BackupInfo, error) {
	o, err := o.withDefaults()
	if err != nil {
		return BackupInfo{}, err
	}
	if _, err := os.Stat(o.serverDir()); err != nil {
		return BackupInfo{}, fmt.Errorf("no service state in %s: %w", o.StateDir, err)
	}
	tmpDir, err := os.MkdirTemp("", "wharf-service-backup-")
	if err != nil {
		return BackupInfo{}, err
	}
	defer os.RemoveAll(tmpDir)
	snap := filepath.Join(tmpDir, etcdEntry)
	info := BackupInfo{Manifest: Manifest{Format: archiveFormat, Created: time.Now().UTC(), StateDir: o.StateDir, Files: map[string]string{}}}
	var si storage.SnapshotInfo
	if o.Proc().Pid() != 0 {
		info.Online = true
		si, err = fetchServiceSnapshot(ctx, o.Kubeconfig(), snap)
	} else {
		si, err = copyStoppedSnapshot(filepath.Join(o.serverDir(), "etcd", "member", "snap", "db"), snap)
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("etcd snapshot of the service: %w", err)
	}
	info.EtcdRevision = si.Revision

	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return BackupInfo{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return BackupInfo{}, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	gz := gzip.NewWriter(cw)
	tw := tar.NewWriter(gz)
	if err := addFile(tw, etcdEntry, snap, info.Files); err != nil {
		return BackupInfo{}, err
	}
	for _, rel := range o.backupEntries() {
		err := addFile(tw, rel, filepath.Join(o.StateDir, filepath.FromSlash(rel)), info.Files)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the walk: a running service's temporary file
		}
		if err != nil {
			return BackupInfo{}, err
		}
	}
	manifest, _ := json.MarshalIndent(info.Manifest, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(manifest)), ModTime: info.Created}); err != nil {
		return BackupInfo{}, err
	}
	if _, err := tw.Write(manifest); err != nil {
		return BackupInfo{}, err
	}
	if err := tw.Close(); err != nil {
		return BackupInfo{}, err
	}
	if err := gz.Close(); err != nil {
		return BackupInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return BackupInfo{}, err
	}
	if err := f.Close(); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return BackupInfo{}, err
	}
	ok = true
	info.SHA256, info.Size = hex.EncodeToString(sum.Sum(nil)), cw.n
	line := info.SHA256 + "  " + filepath.Base(file) + "\n"
	return info, os.WriteFile(file+".sha256", []byte(line), 0o600)
}

// backupEntries are the state dir's files that go in a backup, relative
// and slash-separated: the server's data dir but etcd's (the snapshot
// stands for it) and the kubeconfig (written at each start), the
// settings, the network, the ssh records, the local hosts' records and
// the clusters' backups. Sockets, logs and the pid file stay.
func (o Options) backupEntries() []string {
	var out []string
	// Uploads in progress to the registry are not images yet.
	skip := map[string]bool{"server/etcd": true, "server/registry/uploads": true}
	walk := func(root string, keep func(rel string) bool) {
		filepath.WalkDir(filepath.Join(o.StateDir, root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(o.StateDir, p)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if skip[rel] || strings.HasPrefix(d.Name(), ".") && rel != root {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") && keep(rel) {
				out = append(out, rel)
			}
			return nil
		})
	}
	all := func(string) bool { return true }
	walk("server", func(rel string) bool { return rel != "server/admin.kubeconfig" })
	walk("ssh", all)
	walk("backups", all)
	walk("hosts", func(rel string) bool { return strings.Count(rel, "/") == 2 && path.Base(rel) == "host.json" })
	for _, f := range []string{"service.json", "network.json"} {
		if st, err := os.Stat(filepath.Join(o.StateDir, f)); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func addFile(tw *tar.Writer, name, src string, sums map[string]string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("backup %s: %w", name, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("backup %s: %w", name, err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return fmt.Errorf("backup %s: %w", name, err)
	}
	h := sha256.New()
	// A file that grows meanwhile (a log) is cut at its size when read.
	if _, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(in, st.Size())); err != nil {
		return fmt.Errorf("backup %s: %w", name, err)
	}
	sums[name] = hex.EncodeToString(h.Sum(nil))
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fetchServiceSnapshot takes the running service's snapshot through its API.
func fetchServiceSnapshot(ctx context.Context, kubeconfig, file string) (storage.SnapshotInfo, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+wire.SnapshotPath, nil)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return storage.SnapshotInfo{}, fmt.Errorf("the service runs but does not answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return storage.SnapshotInfo{}, fmt.Errorf("GET %s: %s", wire.SnapshotPath, resp.Status)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return storage.SnapshotInfo{}, err
	}
	if err := f.Close(); err != nil {
		return storage.SnapshotInfo{}, err
	}
	return storage.VerifySnapshot(file, resp.Header.Get(wire.SnapshotSHA256Header))
}

func copyStoppedSnapshot(db, file string) (storage.SnapshotInfo, error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	si, err := storage.CopySnapshot(db, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	return storage.VerifySnapshot(file, si.SHA256)
}

// ErrBadBackup marks a service backup that is damaged or not one.
var ErrBadBackup = errors.New("bad service backup")

// Restore makes stateDir (absent or empty) the state dir of a service as
// it was when file was taken: the archive is checked first (its sha256
// against want, else against file.sha256 when present; every entry
// against the manifest; the etcd snapshot as a snapshot), unpacked into a
// temporary dir beside stateDir, the snapshot restored as the server's
// etcd, and the dir renamed into place. A failure leaves nothing.
// `wharf service start --state-dir` then runs it and takes back the hosts
// whose records it holds.
func Restore(ctx context.Context, o Options, file, want string) (Manifest, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Manifest{}, err
	}
	if entries, err := os.ReadDir(o.StateDir); err == nil && len(entries) > 0 {
		return Manifest{}, fmt.Errorf("restore into %s: not empty (restore into a new state dir)", o.StateDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, err
	}
	if want == "" {
		if line, err := os.ReadFile(file + ".sha256"); err == nil {
			want, _, _ = strings.Cut(strings.TrimSpace(string(line)), " ")
		}
	}
	if want != "" {
		got, err := fileSHA256(file)
		if err != nil {
			return Manifest{}, err
		}
		if !strings.EqualFold(got, want) {
			return Manifest{}, fmt.Errorf("%w: %s has sha256 %s, want %s (corrupted or another file)", ErrBadBackup, file, got, want)
		}
	}
	parent := filepath.Dir(o.StateDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return Manifest{}, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(o.StateDir)+".restore-*")
	if err != nil {
		return Manifest{}, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	in, err := os.Open(file)
	if err != nil {
		return Manifest{}, err
	}
	defer in.Close()
	m, err := unpack(in, tmp)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", file, err)
	}
	snap := filepath.Join(tmp, etcdEntry)
	rdir := o.withStateDir(tmp)
	if _, err := storage.RestoreSnapshot(o.Logger, snap, filepath.Join(rdir.serverDir(), "etcd"), storage.RestoreConfig{}); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w: %w", file, ErrBadBackup, err)
	}
	os.Remove(snap)
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	os.Remove(o.StateDir)
	if err := os.Rename(tmp, o.StateDir); err != nil {
		return Manifest{}, err
	}
	ok = true
	return m, nil
}

func (o Options) withStateDir(dir string) Options {
	o.StateDir = dir
	return o
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unpack extracts a service backup into dir and checks it against its
// manifest: every entry's sha256, no entry missing or extra, no name
// outside dir.
func unpack(r io.Reader, dir string) (Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: not gzip: %w", ErrBadBackup, err)
	}
	tr := tar.NewReader(gz)
	sums := map[string]string{}
	var m Manifest
	seenManifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: %w (truncated?)", ErrBadBackup, err)
		}
		if seenManifest {
			return Manifest{}, fmt.Errorf("%w: entry %q after the manifest", ErrBadBackup, hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size < 0 || hdr.Size > maxArchiveFile {
			return Manifest{}, fmt.Errorf("%w: entry %q is not a regular file of a sane size", ErrBadBackup, hdr.Name)
		}
		if hdr.Name == manifestName {
			data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return Manifest{}, fmt.Errorf("%w: manifest: %w", ErrBadBackup, err)
			}
			if err := json.Unmarshal(data, &m); err != nil {
				return Manifest{}, fmt.Errorf("%w: manifest: %w", ErrBadBackup, err)
			}
			seenManifest = true
			continue
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return Manifest{}, err
		}
		if _, dup := sums[hdr.Name]; dup {
			return Manifest{}, fmt.Errorf("%w: entry %q twice", ErrBadBackup, hdr.Name)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return Manifest{}, err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(hdr.Mode).Perm()|0o600)
		if err != nil {
			return Manifest{}, err
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(f, h), tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: entry %q: %w (truncated?)", ErrBadBackup, hdr.Name, err)
		}
		sums[hdr.Name] = hexSum(h)
	}
	switch {
	case !seenManifest:
		return Manifest{}, fmt.Errorf("%w: no %s (truncated, or not a service backup)", ErrBadBackup, manifestName)
	case m.Format != archiveFormat:
		return Manifest{}, fmt.Errorf("%w: format %q, want %q", ErrBadBackup, m.Format, archiveFormat)
	case m.Files[etcdEntry] == "":
		return Manifest{}, fmt.Errorf("%w: no etcd snapshot", ErrBadBackup)
	}
	for name, want := range m.Files {
		if got, ok := sums[name]; !ok {
			return Manifest{}, fmt.Errorf("%w: %s is missing", ErrBadBackup, name)
		} else if got != want {
			return Manifest{}, fmt.Errorf("%w: %s has sha256 %s, the manifest says %s (corrupted)", ErrBadBackup, name, got, want)
		}
	}
	for name := range sums {
		if _, ok := m.Files[name]; !ok {
			return Manifest{}, fmt.Errorf("%w: %s is not in the manifest", ErrBadBackup, name)
		}
	}
	return m, nil
}

// entryPath checks an archive entry's name: relative, clean, inside the
// state dir, not the snapshot's restored place.
func entryPath(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || clean != name || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") ||
		strings.Contains(name, "\\") || clean == "server/etcd" || strings.HasPrefix(clean, "server/etcd/") {
		return "", fmt.Errorf("%w: entry name %q", ErrBadBackup, name)
	}
	return filepath.FromSlash(clean), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
