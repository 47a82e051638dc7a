package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Shared is storage every server of a cluster reaches (etcd, see
// EtcdStore). With it, the registry's tags and manifest revisions live
// there alone, and every blob and manifest is written there before its
// push is acknowledged; the local directory keeps the uploads in
// progress and a cache of blobs, filled on first read, so a pull through
// any server finds every image and the server it was pushed through may
// be gone. Without it, the directory holds everything.
type Shared interface {
	// PutBlob stores size bytes from r as blob digest (hex of sha256).
	PutBlob(ctx context.Context, digest string, r io.Reader, size int64) error
	// BlobSize reports a stored blob's size; ok false when it is missing.
	BlobSize(ctx context.Context, digest string) (size int64, ok bool, err error)
	// GetBlob writes a stored blob to w; ok false when it is missing.
	GetBlob(ctx context.Context, digest string, w io.Writer) (ok bool, err error)
	// Get, Put and Delete keep small values (tags, revisions) by path;
	// Get reports fs.ErrNotExist for a missing one.
	// Put writes its path/value pairs at once (in one etcd transaction).
	Get(ctx context.Context, path string) (string, error)
	Put(ctx context.Context, pathValues ...string) error
	Delete(ctx context.Context, path string) error
	// List returns the paths under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// WithShared stores the registry's content in s as well (see Shared).
func WithShared(s Shared) Option { return func(r *Registry) { r.shared = s } }

// Paths of tags and revisions relative to the registry's root, "/"-separated:
// the same in the directory and in Shared.
func tagRel(name, tag string) string { return "repositories/" + name + "/_manifests/tags/" + tag }

func revisionRel(name, digest string) string {
	return "repositories/" + name + "/_manifests/revisions/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// readMeta reads a tag or revision, or returns fs.ErrNotExist.
func (reg *Registry) readMeta(ctx context.Context, rel string) (string, error) {
	if reg.shared != nil {
		return reg.shared.Get(ctx, rel)
	}
	return readLink(filepath.Join(reg.dir, filepath.FromSlash(rel)))
}

// writeMeta writes tags or revisions, as rel, value pairs: in this
// order on disk, at once with shared storage.
func (reg *Registry) writeMeta(ctx context.Context, relValues ...string) error {
	if reg.shared != nil {
		return reg.shared.Put(ctx, relValues...)
	}
	for i := 0; i+1 < len(relValues); i += 2 {
		if err := reg.writeFile(filepath.Join(reg.dir, filepath.FromSlash(relValues[i])), []byte(relValues[i+1])); err != nil {
			return err
		}
	}
	return nil
}

func (reg *Registry) removeMeta(ctx context.Context, rel string) error {
	if reg.shared != nil {
		return reg.shared.Delete(ctx, rel)
	}
	return os.Remove(filepath.Join(reg.dir, filepath.FromSlash(rel)))
}

// repositoryRel is a key that records that a repository exists with
// shared storage, as its directory does on disk: deleting its last
// manifest leaves it, with no tags.
func repositoryRel(name string) string { return "repositories/" + name + "/_manifests/repository" }

// sharedRepositories lists the repositories Shared holds revisions of.
func (reg *Registry) sharedRepositories(ctx context.Context) ([]string, error) {
	paths, err := reg.shared.List(ctx, "repositories/")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	names := []string{}
	for _, p := range paths {
		// "_manifests" cannot be a name component (see repositories).
		name, _, ok := strings.Cut(strings.TrimPrefix(p, "repositories/"), "/_manifests/")
		if ok && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// sharedTags lists a repository's tags in Shared; ok false when the
// repository has no revision there.
func (reg *Registry) sharedTags(ctx context.Context, name string) (tags []string, ok bool, err error) {
	paths, err := reg.shared.List(ctx, "repositories/"+name+"/_manifests/")
	if err != nil || len(paths) == 0 {
		return nil, false, err
	}
	tags = []string{}
	prefix := "repositories/" + name + "/_manifests/tags/"
	for _, p := range paths {
		if t, found := strings.CutPrefix(p, prefix); found && !strings.Contains(t, "/") {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags, true, nil
}

// shareBlob copies a committed local blob to Shared, once.
func (reg *Registry) shareBlob(ctx context.Context, digest string) error {
	if reg.shared == nil {
		return nil
	}
	hexd := strings.TrimPrefix(digest, "sha256:")
	if _, ok, err := reg.shared.BlobSize(ctx, hexd); err != nil || ok {
		return err
	}
	f, err := os.Open(reg.blobPath(digest))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := reg.shared.PutBlob(ctx, hexd, f, fi.Size()); err != nil {
		return fmt.Errorf("store blob %s in shared storage: %w", digest, err)
	}
	return nil
}

// fetchBlob makes sure a blob is in the local directory, copying it from
// Shared when another server stored it; fs.ErrNotExist when neither
// has it. The copy is checked against its digest.
func (reg *Registry) fetchBlob(ctx context.Context, digest string) error {
	if _, err := os.Stat(reg.blobPath(digest)); err == nil || reg.shared == nil {
		return err
	}
	mu, _ := reg.fetching.LoadOrStore(digest, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, err := os.Stat(reg.blobPath(digest)); err == nil {
		return nil // fetched while we waited
	}
	if err := os.MkdirAll(reg.uploadPath(""), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(reg.uploadPath(""), "fetch-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	ok, err := reg.shared.GetBlob(ctx, strings.TrimPrefix(digest, "sha256:"), io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("fetch blob %s from shared storage: %w", digest, err)
	case !ok:
		return fs.ErrNotExist
	case "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest:
		return fmt.Errorf("blob %s in shared storage is corrupt: its content has digest sha256:%x", digest, h.Sum(nil))
	}
	return reg.commitBlob(f.Name(), digest)
}

// importedMarker, in the directory, says ImportLocal has run there.
const importedMarker = "shared-import-done"

// ImportLocal copies what the directory holds from before shared
// storage (a server upgraded, or a single-server registry) to Shared:
// blobs it lacks, then revisions and tags it lacks, never overwriting.
// It runs once per directory.
func (reg *Registry) ImportLocal(ctx context.Context) (blobs, metas int, err error) {
	if reg.shared == nil {
		return 0, 0, nil
	}
	marker := filepath.Join(reg.dir, importedMarker)
	if _, err := os.Stat(marker); err == nil {
		return 0, 0, nil
	}
	entries, err := os.ReadDir(filepath.Join(reg.dir, "blobs", "sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		d := "sha256:" + e.Name()
		if _, ok, err := reg.shared.BlobSize(ctx, e.Name()); err != nil || ok {
			if err != nil {
				return blobs, metas, err
			}
			continue
		}
		if err := reg.shareBlob(ctx, d); err != nil {
			return blobs, metas, err
		}
		blobs++
	}
	root := filepath.Join(reg.dir, "repositories")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(reg.dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, err := reg.shared.Get(ctx, rel); !errors.Is(err, fs.ErrNotExist) {
			return err // present (nil) or unreadable
		}
		v, err := readLink(path)
		if err != nil {
			return err
		}
		metas++
		if name, _, ok := strings.Cut(strings.TrimPrefix(rel, "repositories/"), "/_manifests/"); ok {
			return reg.shared.Put(ctx, repositoryRel(name), "", rel, v)
		}
		return reg.shared.Put(ctx, rel, v)
	})
	if err != nil {
		return blobs, metas, err
	}
	if err := os.MkdirAll(reg.dir, 0o755); err != nil {
		return blobs, metas, err
	}
	return blobs, metas, os.WriteFile(marker, nil, 0o644)
}
